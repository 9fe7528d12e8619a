"""Runs bench_spider with settings matching a pipecrawl bench config; see bench/run.

    python bench/scrapy/crawl.py --seeds-file READY --db out.db --concurrency 64 --per-host 64
"""

import argparse
import json
import os
import sys

from scrapy.crawler import CrawlerProcess

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_spider import BenchSpider  # noqa: E402  (needs the path above)


def settings(args):
    s = {
        # Same politeness as the pipecrawl config it is compared with: robots.txt obeyed,
        # the same total and per-host concurrency, no delay between requests to a host.
        "ROBOTSTXT_OBEY": True,
        "CONCURRENT_REQUESTS": args.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": args.per_host,
        "CONCURRENT_REQUESTS_PER_IP": 0,
        "DOWNLOAD_DELAY": 0,
        # Nothing that would make it slower or faster than the crawl itself: no adaptive
        # throttling, no cache between runs.
        "AUTOTHROTTLE_ENABLED": False,
        "HTTPCACHE_ENABLED": False,
        # Breadth-first, as pipecrawl orders its frontier (Scrapy's default is depth-first).
        "DEPTH_PRIORITY": 1,
        "SCHEDULER_DISK_QUEUE": "scrapy.squeues.PickleFifoDiskQueue",
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        # pipecrawl stores every fetched URL, 404s included, so the spider must see them.
        "HTTPERROR_ALLOW_ALL": True,
        # From Scrapy's broad-crawl advice; the site sets no cookies and nobody telnets in.
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": args.log_level,
        "USER_AGENT": "scrapy-bench/1.0 (loopback benchmark)",
        "ITEM_PIPELINES": {"bench_spider.SqlitePipeline": 300},
        "SQLITE_PATH": args.db,
        "SQLITE_BATCH": args.batch,
    }
    if args.max_pages:
        # Counts responses, robots.txt included, like pipecrawl's scope.max_pages counts
        # pages; the few in flight when it trips still land.
        s["CLOSESPIDER_PAGECOUNT"] = args.max_pages
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds-file", required=True, help="bench-site's ready file: one base URL a line")
    p.add_argument("--db", required=True, help="SQLite database to create")
    p.add_argument("--concurrency", type=int, required=True)
    p.add_argument("--per-host", type=int, required=True)
    p.add_argument("--max-pages", type=int, default=0, help="stop after this many responses")
    p.add_argument("--batch", type=int, default=1000, help="items per SQLite commit")
    p.add_argument("--stats-out", help="write Scrapy's end-of-crawl stats here as JSON")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args()

    with open(args.seeds_file) as f:
        seeds = [line.strip() for line in f if line.strip()]
    process = CrawlerProcess(settings(args), install_root_handler=True)
    crawler = process.create_crawler(BenchSpider)
    process.crawl(crawler, seeds=seeds)
    process.start()

    stats = crawler.stats.get_stats()
    if args.stats_out:
        with open(args.stats_out, "w") as f:
            json.dump(stats, f, default=str, indent=1, sort_keys=True)
    # A crawl that fetched nothing is a broken benchmark, not a slow crawler.
    if not stats.get("item_scraped_count"):
        sys.exit("scrapy: no pages scraped")


if __name__ == "__main__":
    main()
