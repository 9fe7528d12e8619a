"""The Scrapy side of bench/run: a spider doing what `pipecrawl crawl` does, for comparison.

It crawls the seeds' hosts, keeps every fetched URL with its status and <title>, and every
link with its anchor text, in SQLite tables shaped like pipecrawl's `pages` and `links`, so
the same SQL measures both crawlers. It is written the way a Scrapy user would write it
(selectors, an item pipeline, the stock scheduler and dupefilter), not tuned beyond what
Scrapy's own broad-crawl advice says.
"""

import sqlite3
from datetime import datetime, timezone
from urllib.parse import urldefrag, urlsplit

import scrapy


def utc_now() -> str:
    # The same RFC 3339 form pipecrawl writes, so julianday() reads both.
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class BenchSpider(scrapy.Spider):
    name = "bench"

    def __init__(self, seeds, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.start_urls = list(seeds)
        # Scope as pipecrawl's default: the seeds' host names, any port.
        self.allowed_domains = sorted({urlsplit(u).hostname for u in self.start_urls})

    async def start(self):
        # Through the dupefilter, unlike Scrapy's default start: otherwise a seed is
        # fetched again when a page links back to it, and pipecrawl never fetches twice.
        for url in self.start_urls:
            yield scrapy.Request(url, callback=self.parse)

    def parse(self, response):
        item = {
            "url": response.url,
            "status": response.status,
            "content_type": response.headers.get("Content-Type", b"").decode("latin-1"),
            "title": None,
            "depth": response.meta.get("depth", 0),
            "fetched_at": utc_now(),
            "bytes": len(response.body),
            "links": [],
        }
        # Only successful HTML is parsed, as in pipecrawl; the rest is just recorded.
        if response.status != 200 or not isinstance(response, scrapy.http.HtmlResponse):
            yield item
            return

        title = response.xpath("normalize-space(//title)").get()
        item["title"] = title or None
        page = urldefrag(response.url)[0]
        seen = set()
        for anchor in response.xpath("//a[@href]"):
            target = urldefrag(response.urljoin(anchor.attrib["href"]))[0]
            # A link to the page itself (`#section`) and non-web schemes are not links.
            if target == page or not target.startswith(("http://", "https://")):
                continue
            text = anchor.xpath("normalize-space(.)").get()
            # One row per distinct (target, anchor text) on a page, as pipecrawl stores them.
            if (target, text) in seen:
                continue
            seen.add((target, text))
            item["links"].append((target, text, anchor.attrib.get("rel")))

        yield item
        # The scheduler's dupefilter and OffsiteMiddleware drop what is known or out of
        # scope, so every distinct target can be handed over as is (in page order, so
        # runs are repeatable).
        for target in dict.fromkeys(t for t, _, _ in item["links"]):
            yield scrapy.Request(target, callback=self.parse)


class SqlitePipeline:
    """Writes items into `pages` and `links`, committing every `SQLITE_BATCH` items."""

    def __init__(self, path, batch):
        self.path = path
        self.batch = batch
        self.pending = 0
        self.db = None

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler.settings["SQLITE_PATH"], crawler.settings.getint("SQLITE_BATCH", 1000))

    def open_spider(self, spider=None):
        self.db = sqlite3.connect(self.path)
        # The durability pipecrawl runs with: WAL, synced at checkpoints, not every commit.
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS pages (
                id INTEGER PRIMARY KEY, url TEXT NOT NULL UNIQUE, status INTEGER,
                content_type TEXT, title TEXT, depth INTEGER NOT NULL,
                fetched_at TEXT NOT NULL, bytes INTEGER);
            CREATE TABLE IF NOT EXISTS links (
                id INTEGER PRIMARY KEY, source_id INTEGER NOT NULL REFERENCES pages (id),
                target_url TEXT NOT NULL, anchor_text TEXT NOT NULL, rel TEXT);
            CREATE INDEX IF NOT EXISTS links_source ON links (source_id);
            CREATE INDEX IF NOT EXISTS links_target ON links (target_url);
            """
        )

    def process_item(self, item, spider=None):
        cur = self.db.execute(
            "INSERT INTO pages (url, status, content_type, title, depth, fetched_at, bytes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item["url"], item["status"], item["content_type"], item["title"],
             item["depth"], item["fetched_at"], item["bytes"]),
        )
        self.db.executemany(
            "INSERT INTO links (source_id, target_url, anchor_text, rel) VALUES (?, ?, ?, ?)",
            [(cur.lastrowid, target, text, rel) for target, text, rel in item["links"]],
        )
        self.pending += 1
        if self.pending >= self.batch:
            self.db.commit()
            self.pending = 0
        # The links are in the database now; handing them on would only keep them alive.
        return {"url": item["url"]}

    def close_spider(self, spider=None):
        self.db.commit()
        self.db.close()
