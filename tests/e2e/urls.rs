//! One URL, one row: spellings, session ids and redirects as the crawl stores them.

use std::time::Duration;

use super::polite::title_at;
use super::raw::{Ending, RawReply, RawSite};
use super::site::{Resource, SiteBuilder, TestSite};
use super::{Db, Harness};

/// Whether the redirect at `url` is stored as leading to a page that was fetched (200).
async fn leads_to_a_stored_page(db: &Db, url: &str) -> bool {
    let sql = format!(
        "SELECT count(*) FROM pages r JOIN pages p ON p.url = r.final_url
         WHERE r.url = '{url}' AND p.status = 200"
    );
    db.scalar(&sql).await == 1
}

/// A seed list saved by a spreadsheet or Notepad starts with a byte order mark (U+FEFF,
/// invisible), which a paste carries into the first seed, and lines end in `\r\n`: the
/// seed was refused as "relative URL without a base", and the whole config with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_pasted_with_a_byte_order_mark_is_the_url_it_names() {
    let site = TestSite::one_host(&[("/", "<title>Home</title>"), ("/a", "")]).await;
    let harness = Harness::default();
    let seeds = format!(
        "seeds = [\"\\uFEFF{}\", \" {} \\r\\n\"]",
        site.url(0, "/"),
        site.url(0, "/a")
    );
    let text = harness
        .test_config_text(&[], "")
        .replacen("seeds = []", &seeds, 1);
    let config =
        pipecrawl::Config::from_toml(&text, "test config").unwrap_or_else(|e| panic!("{e}"));
    pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");
    let db = harness.db().await;
    for url in [site.url(0, "/"), site.url(0, "/a")] {
        assert_eq!(
            db.page(&url).await.map(|p| p.status),
            Some(Some(200)),
            "{url}"
        );
    }
}

/// Servers that keep sessions in URLs redirect to add one. The crawl fetches the URL
/// without it, so the redirect must be stored as leading there: a `final_url` with the
/// session id names no page, and a link checker would call a working link unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_adding_a_session_id_leads_to_the_page_fetched() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/login'>log in</a><a href='/cart'>cart</a>".into()),
    );
    b.add(
        &h,
        "/login",
        Resource::Redirect(302, "/account?sid=5".into()),
    );
    b.add(
        &h,
        "/account",
        Resource::Html("<title>Account</title>".into()),
    );
    b.add(
        &h,
        "/cart",
        Resource::Redirect(302, "/cart;jsessionid=ABC".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;

    assert_eq!(site.count(&site.url(0, "/account")), 1);
    assert!(leads_to_a_stored_page(&db, &site.url(0, "/login")).await);

    // Without its session id the target is the redirect itself: never fetched again, so
    // the chain ends there, and the row says so.
    assert_eq!(site.count(&site.url(0, "/cart")), 1);
    let cart = db.page(&site.url(0, "/cart")).await.expect("a row");
    assert_eq!(cart.final_url.as_deref(), Some(cart.url.as_str()));
    assert_eq!(
        (cart.error_kind.as_deref(), cart.error),
        (
            Some("redirect"),
            Some(format!("a redirect loop: back to {}", cart.url))
        )
    );
}

/// A page that moves with `<meta http-equiv="refresh">` (static hosts, old sites) leads
/// on, as it does in a browser: its URL is a link (`rel` = `refresh`) and is crawled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meta_refresh_is_followed_and_stored_as_a_link() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(
            "<head><meta http-equiv='Refresh' content=\"0; URL='/moved?a=1'\"></head>".into(),
        ),
    );
    b.add(
        &h,
        "/moved?a=1",
        Resource::Html("<title>Moved here</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    let target = site.url(0, "/moved?a=1");
    assert_eq!(
        db.page(&target).await.and_then(|p| p.title).as_deref(),
        Some("Moved here")
    );
    let refresh =
        format!("SELECT count(*) FROM links WHERE target_url = '{target}' AND rel = 'refresh'");
    assert_eq!(db.scalar(&refresh).await, 1);
}

/// A refresh moves the page, as a redirect does: a browser goes there at once, and Scrapy
/// follows it as a redirect (`METAREFRESH_ENABLED`). Read as a link one level deeper, a
/// home page moving to `/en/` by `<meta http-equiv="refresh">` led nowhere under
/// `max_depth = 0` or a section's `include`, which a seed's 3xx target escapes, and a page
/// at `max_depth` moving by its `Refresh` header lost where it moved to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_moves_the_page_as_a_redirect_does_not_a_link_deeper() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let moves_to = |to: &str| format!("<meta http-equiv=refresh content='0; url={to}'>");
    b.add(&h, "/", Resource::Html(moves_to("/en/")));
    b.add(
        &h,
        "/en/",
        Resource::Html("<title>Home</title><a href='/en/docs/'>Docs</a>".into()),
    );
    b.add(
        &h,
        "/en/docs/",
        Resource::WithHeaders(
            vec![("Refresh".into(), "0; url=/en/docs/v2/".into())],
            Box::new(Resource::Html("<title>Docs, moved</title>".into())),
        ),
    );
    b.add(
        &h,
        "/en/docs/v2/",
        Resource::Html("<title>Docs</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[scope]\nmax_depth = 1\ninclude = ['/docs/']\n",
        )
        .await;
    let db = harness.db().await;
    let depth = |path: &str| {
        let url = site.url(0, path);
        let db = &db;
        async move { db.page(&url).await.map(|p| p.depth) }
    };
    assert_eq!(
        depth("/en/").await,
        Some(0),
        "the seed's refresh, as a seed's 3xx"
    );
    assert_eq!(depth("/en/docs/").await, Some(1));
    assert_eq!(
        depth("/en/docs/v2/").await,
        Some(1),
        "at max_depth, as a 3xx"
    );
}

/// A seed that moves to another host by its refresh (an old domain's page sending
/// browsers to the new one) brings that host into the scope, as a seed's 3xx does: the
/// refresh was left out, its host not the seed's, and the crawl ended at the old page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_refreshing_to_another_host_brings_it_into_scope() {
    let mut b = SiteBuilder::bind(2).await;
    let (old, new) = (b.authority(0), b.authority(1));
    let to = format!("http://{new}/");
    b.add(
        &old,
        "/",
        Resource::Html(format!("<meta http-equiv=refresh content='0; url={to}'>")),
    );
    b.add(
        &new,
        "/",
        Resource::Html("<title>New</title><a href='/about'>About</a>".into()),
    );
    b.add(
        &new,
        "/about",
        Resource::Html("<title>About</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    // The new host is on loopback, which the crawl trusts only for the seeds' hosts.
    let loopback = "[network]\nallow = ['127.0.0.0/8']\n";
    harness.crawl(&[site.url(0, "/")], loopback).await;
    let db = harness.db().await;
    let stored = |path: &str| {
        let url = site.url(1, path);
        let db = &db;
        async move { db.page(&url).await.map(|p| (p.depth, p.title)) }
    };
    assert_eq!(stored("/").await, Some((0, Some("New".to_owned()))));
    assert_eq!(stored("/about").await, Some((1, Some("About".to_owned()))));
}

/// A seed whose refresh comes only after its session runs out (a bank's or an intranet's
/// home page sending the idle visitor to `/logout` on a sign-in host after 15 minutes)
/// is a page, not a move: the sign-in host stays out of scope and out of the crawl, and
/// the page's links are crawled. Followed as the seed's redirect, it brought the sign-in
/// host into the scope, as Scrapy (`METAREFRESH_MAXDELAY`: 100 s or more) does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeds_refresh_after_minutes_moves_it_nowhere() {
    let mut b = SiteBuilder::bind(2).await;
    let (home, sign_in) = (b.authority(0), b.authority(1));
    let logout = format!("http://{sign_in}/logout");
    b.add(
        &home,
        "/",
        Resource::Html(format!(
            "<title>Home</title><meta http-equiv=refresh content='900; url={logout}'>\
             <a href='/news'>News</a>"
        )),
    );
    b.add(&home, "/news", Resource::Html("<title>News</title>".into()));
    b.add(
        &sign_in,
        "/logout",
        Resource::Html("<title>Signed out</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let loopback = "[network]\nallow = ['127.0.0.0/8']\n";
    harness.crawl(&[site.url(0, "/")], loopback).await;
    assert_eq!(
        site.hits_for(&sign_in).len(),
        0,
        "the sign-in host was asked"
    );
    let title = |path| title_at(&harness, &site, path);
    assert_eq!(title("/").await.as_deref(), Some("Home"));
    assert_eq!(title("/news").await.as_deref(), Some("News"));
    let to_logout = harness
        .db()
        .await
        .scalar("SELECT count(*) FROM links WHERE target_url LIKE '%/logout'")
        .await;
    assert_eq!(to_logout, 0, "the refresh is no link");
}

/// A link an author marked `rel="refresh"` (no such link type exists, but `rel` takes any
/// word) is a link like any other: it was taken for the page's refresh, followed as its
/// redirect at its depth, past `max_depth = 0`, and left out of the links followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_marked_rel_refresh_is_a_link_not_a_move() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<title>Home</title><a rel='refresh' href='/next'>Next</a>".into()),
    );
    b.add(&h, "/next", Resource::Html("<title>Next</title>".into()));
    let site = b.start();
    let (seeds, harness) = ([site.url(0, "/")], Harness::default());
    harness.crawl(&seeds, "[scope]\nmax_depth = 0\n").await;
    assert_eq!(
        site.count(&site.url(0, "/next")),
        0,
        "a link past max_depth was asked"
    );
    let deeper = Harness::default();
    deeper.crawl(&seeds, "[scope]\nmax_depth = 1\n").await;
    let next = deeper.db().await.page(&site.url(0, "/next")).await;
    assert_eq!(next.map(|p| p.depth), Some(1));
}

/// A page's refresh moves it whatever links on it came first: a gallery's arrow
/// (`<a href="/en/"><img></a>`, no text) before a `<meta http-equiv="refresh">` in the
/// body to the same URL made one row of the two, the link's, and the refresh was followed
/// as that link, a level deeper: under `max_depth = 0` the seed's new home was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_link_to_the_same_url_still_moves_the_page() {
    let arrow_then_refresh = "<body><a href='/en/'><img src='/arrow.png'></a>\
                              <meta http-equiv=refresh content='10; url=/en/'></body>";
    let site =
        TestSite::one_host(&[("/", arrow_then_refresh), ("/en/", "<title>Home</title>")]).await;
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\nmax_depth = 0\n")
        .await;
    let db = harness.db().await;
    let target = site.url(0, "/en/");
    assert_eq!(db.page(&target).await.map(|p| p.depth), Some(0));
    let moves =
        format!("SELECT count(*) FROM links WHERE target_url = '{target}' AND rel = 'refresh'");
    assert_eq!(
        db.scalar(&moves).await,
        1,
        "the one row says the page moves there"
    );
}

/// A page saying `nofollow` still moves by its refresh, as it would by a 3xx: an old
/// domain's parked page (`noindex, nofollow`, and a refresh to the new domain) left the
/// crawl at the old page, its refresh read as one of the links it asks not to follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nofollow_page_still_moves_by_its_refresh() {
    let parked = "<meta name=robots content='noindex, nofollow'>\
                  <meta http-equiv=refresh content='0; url=/new/'><a href='/old'>Old</a>";
    let site = TestSite::one_host(&[("/", parked), ("/new/", ""), ("/old", "")]).await;
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    let new = db.page(&site.url(0, "/new/")).await.map(|p| p.depth);
    assert_eq!(new, Some(0), "where the page moved");
    let old = db.page(&site.url(0, "/old")).await;
    assert!(old.is_none(), "a link nofollow asks not to follow");
}

/// A refresh chain is a redirect chain: followed at the page's depth for
/// `fetch.max_redirects` hops in a row, then as links, a level deeper each (the moves in a
/// row still counted), so that a chain with no end (`/r/1` moving to `/r/2`, …) ends at
/// `max_depth` like any link path. Past them, each refresh went a level deeper and its
/// page's chain began again, `max_redirects` hops more a level: a page reloading itself
/// with a new query cost eleven fetches a level, 561 before the trap rules stopped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_chain_past_max_redirects_goes_on_as_links_do() {
    fn next(path: &str) -> String {
        let n: u32 = path.trim_start_matches("/r/").parse().unwrap_or(0);
        format!("<meta http-equiv=refresh content='0; url=/r/{}'>", n + 1)
    }
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add_prefix(&h, "/r/", Resource::Dynamic(next));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/r/0")],
            "[scope]\nmax_depth = 1\n[fetch]\nmax_redirects = 3\n",
        )
        .await;
    let db = harness.db().await;
    let depths: Vec<(String, i64)> = db
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url.rsplit('/').next().unwrap_or("").to_owned(), p.depth))
        .collect();
    // Three hops at depth 0; the fourth refresh is a link to depth 1, and its page's
    // refresh another link, to depth 2, past `max_depth`.
    let want: Vec<(String, i64)> = [0, 0, 0, 0, 1]
        .into_iter()
        .enumerate()
        .map(|(n, d)| (n.to_string(), d))
        .collect();
    assert_eq!(depths, want);
}

/// Sites move: `http://example.com/` answers with a redirect to
/// `https://www.example.com/`. A seed's redirect leads to where its site is now, so the
/// host it lands on is crawled as the seed's would be (when the config names no hosts),
/// in this run and the next; it is not trusted as a seed is, so its address is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_that_redirects_to_another_host_brings_that_host_into_scope() {
    let mut b = SiteBuilder::bind(3).await;
    let (old, new, other) = (b.authority(0), b.authority(1), b.authority(2));
    b.add(
        &old,
        "/",
        Resource::Redirect(301, format!("http://{new}/home")),
    );
    b.add(
        &new,
        "/home",
        Resource::Html(format!(
            "<a href='/a'>a</a><a href='http://{other}/'>elsewhere</a>"
        )),
    );
    b.add(
        &new,
        "/a",
        Resource::Html("<title>A</title><a href='/b'>b</a>".into()),
    );
    b.add(
        &new,
        "/b",
        Resource::Html("<title>B</title><a href='/c'>c</a>".into()),
    );
    b.add(&new, "/c", Resource::Html("<title>C</title>".into()));
    b.add(&other, "/", Resource::Html("<title>Other</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let loopback = "[network]\nallow = [\"127.0.0.0/8\"]\n[scope]\nmax_pages = 3\n";
    harness.crawl(&[site.url(0, "/")], loopback).await;
    let more = "[network]\nallow = [\"127.0.0.0/8\"]\n";
    harness.crawl(&[site.url(0, "/")], more).await;

    let db = harness.db().await;
    for (url, title) in [
        (site.url(1, "/a"), "A"),
        (site.url(1, "/b"), "B"),
        (site.url(1, "/c"), "C"),
    ] {
        assert_eq!(
            db.page(&url).await.and_then(|p| p.title).as_deref(),
            Some(title),
            "{url}"
        );
    }
    assert!(
        db.page(&site.url(2, "/")).await.is_none(),
        "a link off the new host is out of scope"
    );
}

/// A seed whose chain runs past `fetch.max_redirects` ends at the hop refused: the host
/// that hop names was never reached, so it does not join the scope. It did, for the rest
/// of the run only (the next one builds its scope from the redirects followed), and a
/// link to it from another seed's page was crawled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeds_redirect_refused_as_one_too_many_brings_no_host_into_scope() {
    let mut b = SiteBuilder::bind(3).await;
    let (chain, home, refused) = (b.authority(0), b.authority(1), b.authority(2));
    b.add(&chain, "/", Resource::Redirect(301, "/1".into()));
    b.add(&chain, "/1", Resource::Redirect(301, "/2".into()));
    b.add(
        &chain,
        "/2",
        Resource::Redirect(301, format!("http://{refused}/landing")),
    );
    // Read once the chain is stored: its links are judged by the scope as the chain left it.
    b.add(
        &home,
        "/",
        Resource::Slow(
            Duration::from_secs(1),
            Box::new(Resource::Html(format!(
                "<a href='http://{refused}/other'>other</a>"
            ))),
        ),
    );
    b.add(
        &refused,
        "/other",
        Resource::Html("<title>Other</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let extra = "[fetch]\nmax_redirects = 2\n[network]\nallow = [\"127.0.0.0/8\"]\n";
    harness
        .crawl(&[site.url(0, "/"), site.url(1, "/")], extra)
        .await;

    let db = harness.db().await;
    let last = db.page(&site.url(0, "/2")).await.expect("the hop refused");
    assert_eq!(last.error_kind.as_deref(), Some("redirect"));
    assert!(
        site.hits_for(&refused).is_empty(),
        "asked of a host no redirect led to: {:?}",
        site.requested_urls()
    );
}

/// The `Refresh` header moves a page as `<meta http-equiv="refresh">` does, and browsers
/// act on it first: its URL is the page's refresh link, and is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_header_is_followed_before_the_pages_meta_refresh() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::WithHeaders(
            vec![("Refresh".into(), "5; url=/moved".into())],
            Box::new(Resource::Html(
                "<meta http-equiv=refresh content='0; url=/meta'><title>Old</title>".into(),
            )),
        ),
    );
    b.add(
        &h,
        "/moved",
        Resource::Html("<title>Moved here</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/moved"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Moved here")
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE rel = 'refresh'")
            .await,
        1,
        "one refresh: the header's"
    );
    assert_eq!(site.count(&site.url(0, "/meta")), 0);
}

/// Browsers act on a `Refresh` header whatever the document: a tracking link answering
/// 200 with `Refresh: 0; url=…`, plain text or no body at all, or a PDF that moved,
/// leads on as surely as a 302, and its target was never crawled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_header_moves_a_document_that_is_not_html() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    let links = "<a href='/track'>t</a><a href='/notice.txt'>n</a><a href='/old.pdf'>p</a>";
    b.add(&h, "/", Resource::Html(links.into()));
    let moved = |to: &str, inner: Resource| {
        Resource::WithHeaders(
            vec![("Refresh".into(), format!("0; url={to}"))],
            Box::new(inner),
        )
    };
    b.add(
        &h,
        "/track",
        moved("/landing", Resource::Streamed(Vec::new())),
    );
    let text = Resource::Typed("text/plain", b"moved".to_vec());
    b.add(&h, "/notice.txt", moved("/notice", text));
    let pdf = Resource::Typed("application/pdf", b"%PDF-1.4".to_vec());
    b.add(&h, "/old.pdf", moved("/new.pdf", pdf));
    for path in ["/landing", "/notice"] {
        b.add(&h, path, Resource::Html("<title>Here</title>".into()));
    }
    let pdf = Resource::Typed("application/pdf", b"%PDF-1.4".to_vec());
    b.add(&h, "/new.pdf", pdf);
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    for (from, to) in [
        ("/track", "/landing"),
        ("/notice.txt", "/notice"),
        ("/old.pdf", "/new.pdf"),
    ] {
        assert_eq!(site.count(&site.url(0, to)), 1, "{from}'s refresh to {to}");
        let rel = db
            .scalar(&format!(
                "SELECT count(*) FROM links l JOIN pages p ON p.id = l.source_id \
                 WHERE p.url = '{}' AND l.target_url = '{}' AND l.rel = 'refresh'",
                site.url(0, from),
                site.url(0, to)
            ))
            .await;
        assert_eq!(rel, 1, "{from}'s refresh is its links row");
    }
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM pages WHERE links_left_out IS NOT NULL AND url LIKE '%.pdf'"
        )
        .await,
        0,
        "a PDF is not read as HTML for its header"
    );
}

/// A browser acts on a `Refresh` header as it makes the document, before any `<base>`
/// is read, so the header's URL resolves against the page's own URL; a
/// `<meta http-equiv="refresh">` resolves against the base in effect where it stands, so
/// one before the `<base>` is not moved by it (the HTML standard's shared declarative
/// refresh steps parse the URL relative to the document as it is then).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_resolves_against_the_base_in_effect_when_a_browser_acts_on_it() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/h/page'>h</a><a href='/m/page'>m</a>".into()),
    );
    b.add(
        &h,
        "/h/page",
        Resource::WithHeaders(
            vec![("Refresh".into(), "0; url=next".into())],
            Box::new(Resource::Html(
                "<base href='/base/'><title>H</title>".into(),
            )),
        ),
    );
    b.add(
        &h,
        "/m/page",
        Resource::Html(
            "<meta http-equiv=refresh content='0; url=next'><base href='/base/'>\
             <a href='a'>a</a>"
                .into(),
        ),
    );
    for path in ["/h/next", "/m/next", "/base/a"] {
        b.add(&h, path, Resource::Html("<title>ok</title>".into()));
    }
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    let mut links = db.links().await;
    links.retain(|(source, ..)| source != &site.url(0, "/"));
    links.sort();
    assert_eq!(
        links,
        [
            (
                site.url(0, "/h/page"),
                site.url(0, "/h/next"),
                String::new()
            ),
            (
                site.url(0, "/m/page"),
                site.url(0, "/base/a"),
                "a".to_owned()
            ),
            (
                site.url(0, "/m/page"),
                site.url(0, "/m/next"),
                String::new()
            ),
        ]
    );
    assert_eq!(site.count(&site.url(0, "/base/next")), 0);
}

/// Only a refresh a browser acts on stops the ones after it: a `<meta http-equiv=refresh>`
/// with no content, or with content that names no time (`url=/x`, a template's
/// placeholder), is passed over, as the HTML standard's shared declarative refresh steps
/// return before a document "will declaratively refresh", and the next one moves the page.
/// One that reloads the page itself does stop them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_meta_refresh_does_not_stop_the_next_one() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(
            "<a href='/broken'>b</a><a href='/reload'>r</a><a href='/header'>h</a>".into(),
        ),
    );
    b.add(
        &h,
        "/broken",
        Resource::Html(
            "<meta http-equiv=refresh><meta http-equiv=refresh content=''>\
             <meta http-equiv=refresh content='url=/x'><meta http-equiv=refresh content='{delay}'>\
             <meta http-equiv=refresh content='0; url=/moved'>"
                .into(),
        ),
    );
    b.add(
        &h,
        "/reload",
        Resource::Html(
            "<meta http-equiv=refresh content='30'><meta http-equiv=refresh content='0; url=/no'>"
                .into(),
        ),
    );
    b.add(
        &h,
        "/header",
        Resource::WithHeaders(
            vec![("Refresh".into(), "30".into())],
            Box::new(Resource::Html(
                "<meta http-equiv=refresh content='0; url=/no'>".into(),
            )),
        ),
    );
    b.add(&h, "/moved", Resource::Html("<title>Moved</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    let db = harness.db().await;
    assert_eq!(site.count(&site.url(0, "/moved")), 1);
    assert_eq!(site.count(&site.url(0, "/no")), 0);
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE rel = 'refresh'")
            .await,
        1,
        "the refresh of /broken only"
    );
}

/// A refresh whose URL does not parse (`http://[bad/`, a port past 65535) is not acted
/// on, as the HTML standard's shared declarative refresh steps return before the document
/// "will declaratively refresh": a `<meta>` refresh after it, or after a `Refresh` header
/// so broken, moves the page. One to a URL that parses but is no page (`javascript:`,
/// `mailto:`) is acted on (browsers then refuse to go there), so the ones after it are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_to_a_url_that_does_not_parse_does_not_stop_the_next_one() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(
            "<a href='/meta'>m</a><a href='/header'>h</a><a href='/script'>s</a>".into(),
        ),
    );
    b.add(
        &h,
        "/meta",
        Resource::Html(
            "<meta http-equiv=refresh content='0; url=http://[bad/'>\
             <meta http-equiv=refresh content='0; url=http://x.test:99999/'>\
             <meta http-equiv=refresh content='0; url=/moved'>"
                .into(),
        ),
    );
    b.add(
        &h,
        "/header",
        Resource::WithHeaders(
            vec![("Refresh".into(), "0; url=http://[bad/".into())],
            Box::new(Resource::Html(
                "<meta http-equiv=refresh content='0; url=/moved-too'>".into(),
            )),
        ),
    );
    b.add(
        &h,
        "/script",
        Resource::Html(
            "<meta http-equiv=refresh content='0; url=javascript:go()'>\
             <meta http-equiv=refresh content='0; url=/no'>"
                .into(),
        ),
    );
    for path in ["/moved", "/moved-too", "/no"] {
        b.add(&h, path, Resource::Html("<title>ok</title>".into()));
    }
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    assert_eq!(site.count(&site.url(0, "/moved")), 1);
    assert_eq!(site.count(&site.url(0, "/moved-too")), 1);
    assert_eq!(site.count(&site.url(0, "/no")), 0);
}

/// robots.txt is asked for where its redirects lead, as a page is; the user name and
/// password a redirect writes there are not the crawl's to send either. They were:
/// robots.txt was asked for again with them, as HTTP Basic authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_written_in_a_robots_txt_redirect_are_never_sent() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/robots.txt",
        Resource::Redirect(301, format!("http://site:secret@{h}/rules.txt")),
    );
    b.add(
        &h,
        "/rules.txt",
        Resource::Typed(
            "text/plain",
            b"User-agent: *\nDisallow: /private\n".to_vec(),
        ),
    );
    b.add(
        &h,
        "/",
        Resource::Html("<a href='/private'>private</a>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;

    let rules: Vec<bool> = site
        .hits()
        .into_iter()
        .filter(|hit| hit.path == "/rules.txt")
        .map(|hit| hit.authorized)
        .collect();
    assert_eq!(rules, [false], "asked once, without the credentials");
    assert_eq!(site.count(&site.url(0, "/private")), 0, "its rules apply");
}

/// A URL's user name and password are sent (HTTP Basic authorization) to its host. Those a
/// page writes in a link or a redirect (`http://user:pw@host/`) are not the crawl's to
/// send: found URLs lose them, so they reach no host and the URL is the row and the fetch
/// it is without them. A seed's own go to its origin alone, and are stored nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_written_in_a_found_url_are_never_sent() {
    let mut b = SiteBuilder::bind(2).await;
    let (h, h1) = (b.authority(0), b.authority(1));
    b.add(
        &h,
        "/",
        Resource::Html(format!(
            "<a href='http://page:secret@{h}/secret'>s</a><a href='/secret'>plain</a>\
             <a href='/go'>go</a>"
        )),
    );
    b.add(
        &h,
        "/go",
        Resource::Redirect(301, format!("http://page:secret@{h}/moved")),
    );
    b.add(
        &h1,
        "/own/",
        Resource::Html(format!(
            "<a href='inner'>inner</a><a href='http://other:pw@{h}/other'>o</a>"
        )),
    );
    for path in ["/secret", "/moved", "/other"] {
        b.add(&h, path, Resource::Html("<title>ok</title>".into()));
    }
    b.add(
        &h1,
        "/own/inner",
        Resource::Html("<title>ok</title>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let own = format!("http://me:pw@{h1}/own/");
    harness.crawl(&[site.url(0, "/"), own], "").await;

    let authorized: Vec<(String, bool)> = site
        .hits()
        .into_iter()
        .filter(|hit| hit.path != "/robots.txt")
        .map(|hit| (hit.path, hit.authorized))
        .collect();
    let expected = [
        ("/", false),
        ("/go", false),
        ("/moved", false),
        ("/other", false),
        ("/own/", true),
        ("/own/inner", true),
        ("/secret", false),
    ];
    let mut sorted = authorized.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected.map(|(p, a)| (p.to_owned(), a)),
        "each path once, with credentials only on the seed's"
    );
    let db = harness.db().await;
    let mut targets: Vec<String> = db.links().await.into_iter().map(|l| l.1).collect();
    targets.sort();
    targets.dedup();
    assert_eq!(
        targets,
        [
            site.url(0, "/go"),
            site.url(0, "/other"),
            site.url(0, "/secret"),
            site.url(1, "/own/inner"),
        ]
    );
    let sql = format!(
        "SELECT count(*) FROM pages WHERE url = '{}' AND location = '{}'",
        site.url(0, "/go"),
        site.url(0, "/moved")
    );
    assert_eq!(
        db.scalar(&sql).await,
        1,
        "the redirect's target, as followed"
    );
}

/// A seed's user name and password (`http://user:pw@host/`) are for its origin: every
/// request there carries them, robots.txt's and an absolute link's too, and none goes
/// elsewhere. They were kept in the URL, so they were stored in `pages`, `links` and
/// `frontier` (a database made to be shared, which never holds the config for this
/// reason), written in every log line naming the URL, and a page linked both relatively
/// (`/a`, with them) and absolutely (`http://host/a`, without) was two rows and two
/// fetches, one of them unauthorized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeds_credentials_go_to_its_origin_and_are_stored_nowhere() {
    let mut b = SiteBuilder::bind(2).await;
    let (h, other) = (b.authority(0), b.authority(1));
    b.add(
        &h,
        "/",
        Resource::Html(format!(
            "<a href='/a'>a</a><a href='http://{h}/a'>a again</a><a href='/go'>go</a>"
        )),
    );
    b.add(
        &h,
        "/go",
        Resource::Redirect(302, format!("http://{other}/landed")),
    );
    b.add(&h, "/a", Resource::Html("<title>a</title>".into()));
    b.add(&other, "/landed", Resource::Html("<title>x</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    let extra = "[network]\nallow = ['127.0.0.0/8']\n[scope]\nhosts = ['127.0.0.1', '127.0.0.2']\n";
    harness.crawl(&[format!("http://me:pw@{h}/")], extra).await;

    let mut asked: Vec<(String, String, bool)> = site
        .hits()
        .into_iter()
        .map(|hit| (hit.host, hit.path, hit.authorized))
        .collect();
    asked.sort();
    let on = |host: &str, path: &str, authorized| (host.to_owned(), path.to_owned(), authorized);
    assert_eq!(
        asked,
        [
            on(&h, "/", true),
            on(&h, "/a", true),
            on(&h, "/go", true),
            on(&h, "/robots.txt", true),
            on(&other, "/landed", false),
            on(&other, "/robots.txt", false),
        ],
        "each URL once, the credentials on the seed's origin alone"
    );
    let db = harness.db().await;
    let stored = db
        .scalar(
            "SELECT (SELECT count(*) FROM pages WHERE url || final_url || coalesce(location, '') \
             LIKE '%pw@%') + (SELECT count(*) FROM links WHERE target_url LIKE '%pw@%') \
             + (SELECT count(*) FROM frontier WHERE url LIKE '%pw@%')",
        )
        .await;
    assert_eq!(stored, 0, "rows holding the password");
    assert_eq!(
        db.page(&site.url(0, "/")).await.map(|p| p.status),
        Some(Some(200))
    );
    // Asked about the seed as the config wrote it, `query` finds the row stored without.
    let db = harness.db_path().display().to_string();
    let seed = format!("http://me:pw@{h}/");
    let words = [
        "query", "--db", &db, "--format", "csv", "links", "--from", &seed,
    ];
    let out = super::query::pipecrawl(super::query::args(&words)).await;
    let links = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        links.lines().count(),
        4,
        "a header and three links: {links}"
    );
}

/// A pipecrawl from before 2026-12-07 stored a seed's user name and password in its URL and
/// in every URL its relative links reached (`http://me:pw@host/a`). The first run of a
/// newer one on that database queued the seed without them, a URL it had never seen, and
/// fetched the whole site again beside the rows it had: every page twice, two rows each.
/// The seed as stored is the seed: its rows are crawled on, and a warning says why the
/// password stays in the database and what gives one without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_holding_a_seeds_credentials_in_its_urls_is_not_crawled_again() {
    let site = super::recrawl::home_a_b().await;
    let harness = Harness::default();
    let seed = site.url(0, "/").replacen("http://", "http://me:pw@", 1);
    harness.crawl(std::slice::from_ref(&seed), "").await;
    // As the earlier pipecrawl spelt the URLs of the seed's origin it queued and stored.
    let respell =
        |column: &str| format!("{column} = replace({column}, 'http://', 'http://me:pw@')");
    let earlier = [
        format!("UPDATE frontier SET {}", respell("url")),
        format!(
            "UPDATE pages SET {}, {}",
            respell("url"),
            respell("final_url")
        ),
    ];
    super::query::change_database(&harness, &earlier).await;
    let asked = site.hits().len();

    let config = harness.write_config(&harness.test_config_text(&[seed], ""));
    let out = super::cluster::run_to_the_end("crawl", &config);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    let again: Vec<String> = site
        .hits()
        .into_iter()
        .skip(asked)
        .map(|hit| hit.path)
        .collect();
    assert_eq!(again, Vec::<String>::new(), "pages fetched again: {said}");
    assert_eq!(harness.page_count().await, 3);
    assert!(
        said.contains(&format!(
            "seeds[0] ({}) is stored with its user name and password",
            site.url(0, "/").replacen("http://", "http://me:***@", 1)
        )) && !said.contains("pw@"),
        "{said}"
    );
}

/// A `<link rel=canonical>` is a found URL too: the credentials a page writes in it
/// (`http://user:pw@host/`) are not the page's, and were stored and exported as its
/// `canonical_url`. They go as a link's do, and its session ids with them; so do a seed's
/// own, which are sent to its origin and stored nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_written_in_a_canonical_url_are_not_stored() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(
        &h,
        "/",
        Resource::Html(format!(
            "<link rel=canonical href='http://page:secret@{h}/main?sid=abc'>"
        )),
    );
    b.add(
        &h,
        "/own/",
        Resource::Html("<link rel=canonical href='/own/main'>".into()),
    );
    let site = b.start();
    let harness = Harness::default();
    let own = format!("http://me:pw@{h}/own/");
    harness.crawl(&[site.url(0, "/"), own], "").await;
    let db = harness.db().await;
    for (page, canonical) in [
        (site.url(0, "/"), site.url(0, "/main")),
        (site.url(0, "/own/"), site.url(0, "/own/main")),
    ] {
        let sql = format!(
            "SELECT count(*) FROM pages WHERE url = '{page}' AND canonical_url = '{canonical}'"
        );
        assert_eq!(db.scalar(&sql).await, 1, "{page}: {canonical}");
    }
}

/// A seed is crawled whatever `include` and `exclude` say: the user named it. Sites move
/// their home page (`/` to `/en/`, `http://` to `https://`), and where a seed redirects is
/// that same page: it is crawled as the seed would be, so a crawl of one section
/// (`include = ['/docs/']`) started from a home page that moved still finds the section.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeds_redirect_is_crawled_whatever_the_include_rules_say() {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Redirect(301, "/en/".into()));
    b.add(
        &h,
        "/en/",
        Resource::Html(
            "<title>Home</title><a href='/docs/a'>docs</a><a href='/blog/b'>blog</a>".into(),
        ),
    );
    b.add(&h, "/docs/a", Resource::Html("<title>Docs</title>".into()));
    b.add(&h, "/blog/b", Resource::Html("<title>Blog</title>".into()));
    let site = b.start();
    let harness = Harness::default();
    harness
        .crawl(&[site.url(0, "/")], "[scope]\ninclude = ['/docs/']\n")
        .await;
    let db = harness.db().await;
    assert_eq!(
        db.page(&site.url(0, "/docs/a"))
            .await
            .and_then(|p| p.title)
            .as_deref(),
        Some("Docs"),
        "the section is reached through the seed's new place"
    );
    assert_eq!(
        site.count(&site.url(0, "/blog/b")),
        0,
        "include still holds"
    );
}

/// A `Refresh` header is a header like `Location`: servers write its URL in raw UTF-8
/// (`url=/café`) or in their own 8-bit charset, and browsers follow it either way. The
/// page moves there as it would with the URL escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_header_in_raw_utf8_or_latin1_is_followed() {
    // An empty page, moved by its header alone.
    let moved = |url: &[u8]| {
        let mut head =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\nRefresh: 0; url="
                .to_vec();
        head.extend_from_slice(url);
        RawReply::new(head, Vec::new(), Ending::Close)
    };
    let raw = RawSite::start(vec![
        (
            "/",
            RawReply::ok(
                "text/html",
                "<a href='/old'>old</a><a href='/older'>older</a>",
            ),
        ),
        ("/old", moved("/café".as_bytes())),
        (
            "/caf%C3%A9",
            RawReply::ok("text/html", "<title>Café</title>"),
        ),
        ("/older", moved(b"/caf\xe9")),
        (
            "/caf%E9",
            RawReply::ok("text/html", "<title>Latin-1</title>"),
        ),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;
    let db = harness.db().await;
    for (path, title) in [("/caf%C3%A9", "Café"), ("/caf%E9", "Latin-1")] {
        assert_eq!(
            db.page(&raw.url(path))
                .await
                .and_then(|p| p.title)
                .as_deref(),
            Some(title),
            "{path}"
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM links WHERE rel = 'refresh'")
            .await,
        2
    );
}

/// Only a redirect moves a URL: a 301, 302, 303, 307 or 308, and a 300 naming its
/// preferred choice. A `Location` on another 3xx (a 304 sent without being asked, the
/// retired 305 "Use Proxy", whose `Location` is a proxy's address, the unused 306) names
/// no page a browser would go to: the row is the answer itself, not a hop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_on_a_3xx_that_is_not_a_redirect_is_not_followed() {
    let with_location = |status: &str, to: &str| {
        RawReply::new(
            format!("HTTP/1.1 {status}\r\nLocation: {to}\r\nContent-Length: 0"),
            "",
            Ending::Close,
        )
    };
    let raw =
        RawSite::start(vec![
        (
            "/",
            RawReply::ok(
                "text/html",
                "<a href='/300'>a</a><a href='/304'>b</a><a href='/305'>c</a><a href='/306'>d</a>",
            ),
        ),
        ("/300", with_location("300 Multiple Choices", "/choice")),
        ("/choice", RawReply::ok("text/html", "<title>Chosen</title>")),
        ("/304", with_location("304 Not Modified", "/elsewhere")),
        ("/305", with_location("305 Use Proxy", "/proxy")),
        ("/306", with_location("306 Switch Proxy", "/unused")),
    ])
        .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;
    let db = harness.db().await;

    let choice = raw.url("/choice");
    let multiple = db.page(&raw.url("/300")).await.expect("a row");
    assert_eq!(multiple.final_url.as_deref(), Some(choice.as_str()));
    assert_eq!(raw.count("/choice"), 1);
    for (path, target) in [
        ("/304", "/elsewhere"),
        ("/305", "/proxy"),
        ("/306", "/unused"),
    ] {
        assert_eq!(raw.count(target), 0, "{path} led to {target}");
        let url = raw.url(path);
        let row = db.page(&url).await.expect("a row");
        assert_eq!(
            (row.final_url.as_deref(), row.error_kind),
            (Some(url.as_str()), None),
            "{path}"
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM pages WHERE location IS NOT NULL")
            .await,
        1,
        "the 300's only"
    );
}

/// A one-host site whose `/` is `home` and each of `redirects` (path, `Location`) a 301,
/// crawled from `/`.
pub(super) async fn crawled_redirects(
    home: String,
    redirects: &[(&str, &str)],
) -> (TestSite, Harness) {
    let mut b = SiteBuilder::bind(1).await;
    let h = b.authority(0);
    b.add(&h, "/", Resource::Html(home));
    for (path, location) in redirects {
        b.add(&h, path, Resource::Redirect(301, (*location).to_owned()));
    }
    let site = b.start();
    let harness = Harness::default();
    harness.crawl(&[site.url(0, "/")], "").await;
    (site, harness)
}

/// `final_url` is the redirect's own URL when the crawl does not go on from it because it
/// is a `redirect` error (a `Location` that is not a URL or not http(s), as much as one
/// too many or one closing a loop), and its target when the crawl does not go on from it
/// only because the target is out of scope: that chain ends at a URL not crawled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_in_error_ends_at_itself_and_one_out_of_scope_at_its_target() {
    let outside = "http://127.0.0.9:9/elsewhere";
    let (site, harness) = crawled_redirects(
        "<a href='/bad'>b</a><a href='/ftp'>f</a><a href='/out'>o</a>".to_owned(),
        &[
            ("/bad", "http://[bad/"),
            ("/ftp", "ftp://127.0.0.1/x"),
            ("/out", outside),
        ],
    )
    .await;
    let db = harness.db().await;

    for path in ["/bad", "/ftp"] {
        let url = site.url(0, path);
        let row = db.page(&url).await.expect("a row");
        assert_eq!(
            (row.final_url.as_deref(), row.error_kind.as_deref()),
            (Some(url.as_str()), Some("redirect")),
            "{path}"
        );
    }
    let out = db.page(&site.url(0, "/out")).await.expect("a row");
    assert_eq!(
        (out.final_url.as_deref(), out.error_kind),
        (Some(outside), None)
    );
    assert!(db.page(outside).await.is_none(), "not crawled");
}

/// A site behind a cookie check (a consent wall, a bot check): a request without its
/// cookie is redirected back to itself with the cookie set. Without a jar every page was
/// its own redirect loop, and the site was crawled as nothing but `redirect` rows.
mod cookie_check {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use axum::extract::{Request, State};
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use tokio::net::TcpListener;

    /// Serves `/`, `/a` and `/b` to requests carrying `consent=yes`, and sends others
    /// back where they came from with the cookie; counts the requests.
    pub async fn start() -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority = listener.local_addr().expect("address").to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&requests));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (authority, requests)
    }

    async fn serve(State(requests): State<Arc<AtomicUsize>>, request: Request) -> Response {
        requests.fetch_add(1, Ordering::SeqCst);
        let path = request.uri().path().to_owned();
        let consented = request.headers().get_all(header::COOKIE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split("; ").any(|c| c == "consent=yes"))
        });
        if path == "/robots.txt" {
            return StatusCode::NOT_FOUND.into_response();
        }
        if !consented {
            let headers = [
                (header::LOCATION, path),
                (
                    header::SET_COOKIE,
                    "consent=yes; Path=/; Max-Age=3600".to_owned(),
                ),
            ];
            return (StatusCode::FOUND, headers).into_response();
        }
        let body = match path.as_str() {
            "/" => "<title>Home</title><a href='/a'>a</a><a href='/b'>b</a>",
            "/a" => "<title>A</title><a href='/b'>b</a>",
            "/b" => "<title>B</title>",
            _ => return StatusCode::NOT_FOUND.into_response(),
        };
        ([(header::CONTENT_TYPE, "text/html")], body).into_response()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_behind_a_cookie_check_is_crawled_with_its_cookie() {
    let (authority, requests) = cookie_check::start().await;
    let url = |path: &str| format!("http://{authority}{path}");
    let harness = Harness::default();
    harness.crawl(&[url("/")], "").await;
    let db = harness.db().await;

    let titles: Vec<_> = db
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url, p.status, p.title, p.error_kind))
        .collect();
    let page = |path: &str, title: &str| (url(path), Some(200), Some(title.to_owned()), None);
    assert_eq!(
        titles,
        vec![page("/", "Home"), page("/a", "A"), page("/b", "B")]
    );
    // robots.txt, then the first page twice (the check, then the page with its cookie);
    // every page after carries the cookie.
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_cookies_off_a_cookie_check_is_a_redirect_loop() {
    let (authority, _) = cookie_check::start().await;
    let seed = format!("http://{authority}/");
    let harness = Harness::default();
    harness
        .crawl(std::slice::from_ref(&seed), "[fetch]\ncookies = false\n")
        .await;
    let row = harness.db().await.page(&seed).await.expect("a row");
    assert_eq!(row.error_kind.as_deref(), Some("redirect"), "{row:?}");
}

/// A cookie check on another URL: `/a` without its cookie redirects to `/check`, which
/// sets the cookie and redirects back to `/a`, as consent walls and bot checks do. With
/// `accepts` false, `/a` never takes the cookie: a real loop.
mod cookie_check_elsewhere {
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::extract::{Request, State};
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use tokio::net::TcpListener;

    pub type Log = Arc<Mutex<Vec<String>>>;

    /// Starts the site; returns its authority and the paths asked, in order.
    pub async fn start(accepts: bool) -> (String, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority = listener.local_addr().expect("address").to_string();
        let log = Log::default();
        let app = Router::new()
            .fallback(serve)
            .with_state((Arc::clone(&log), accepts));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (authority, log)
    }

    async fn serve(State((log, accepts)): State<(Log, bool)>, request: Request) -> Response {
        let path = request.uri().path().to_owned();
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(path.clone());
        let consented = request.headers().get_all(header::COOKIE).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split("; ").any(|c| c == "consent=yes"))
        });
        match path.as_str() {
            "/a" if consented && accepts => (
                [(header::CONTENT_TYPE, "text/html")],
                "<title>A</title><a href='/b'>b</a>",
            )
                .into_response(),
            "/a" => (StatusCode::FOUND, [(header::LOCATION, "/check")]).into_response(),
            "/check" => {
                let headers = [
                    (header::LOCATION, "/a"),
                    (header::SET_COOKIE, "consent=yes; Path=/"),
                ];
                (StatusCode::FOUND, headers).into_response()
            }
            "/b" => ([(header::CONTENT_TYPE, "text/html")], "<title>B</title>").into_response(),
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    }
}

/// `/a` → `/check` (sets the cookie) → `/a`: `/a` is asked again with the cookie, as a
/// browser follows the chain, and stored as the page it is; what only it links to is
/// reached, and the check's row ends its chain at `/a`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_check_on_another_url_is_passed() {
    let (authority, log) = cookie_check_elsewhere::start(true).await;
    let url = |path: &str| format!("http://{authority}{path}");
    let harness = Harness::default();
    harness.crawl(&[url("/a")], "").await;
    let db = harness.db().await;

    let rows: Vec<_> = db
        .pages()
        .await
        .into_iter()
        .map(|p| (p.url, p.final_url, p.status, p.title, p.error_kind))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                url("/a"),
                Some(url("/a")),
                Some(200),
                Some("A".to_owned()),
                None
            ),
            (
                url("/b"),
                Some(url("/b")),
                Some(200),
                Some("B".to_owned()),
                None
            ),
            (url("/check"), Some(url("/a")), Some(302), None, None),
        ]
    );
    let asked = log.lock().expect("log").clone();
    assert_eq!(asked, ["/robots.txt", "/a", "/check", "/a", "/b"]);
}

/// As [`a_cookie_check_on_another_url_is_passed`], on PostgreSQL (skipped, saying so,
/// without the server binaries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_check_on_another_url_is_passed_on_postgresql() {
    let Some(server) = super::postgres::TestPostgres::start(
        "urls::a_cookie_check_on_another_url_is_passed_on_postgresql",
    ) else {
        return;
    };
    let database = server.database("cookie_check").await;
    let (authority, log) = cookie_check_elsewhere::start(true).await;
    let url = |path: &str| format!("http://{authority}{path}");
    let harness = Harness::default();
    let config = super::recrawl::config_on(&harness, &format!("{database:?}"), &url("/a"), "");
    pipecrawl::crawl(config, std::future::pending())
        .await
        .expect("the crawl succeeds");

    /// url, final_url, status, error_kind.
    type Row = (String, Option<String>, Option<i64>, Option<String>);
    let pool = sqlx::PgPool::connect(&database).await.expect("connect");
    let rows: Vec<Row> =
        sqlx::query_as("SELECT url, final_url, status, error_kind FROM pages ORDER BY url")
            .fetch_all(&pool)
            .await
            .expect("the pages");
    pool.close().await;
    assert_eq!(
        rows,
        vec![
            (url("/a"), Some(url("/a")), Some(200), None),
            (url("/b"), Some(url("/b")), Some(200), None),
            (url("/check"), Some(url("/a")), Some(302), None),
        ]
    );
    let asked = log.lock().expect("log").clone();
    assert_eq!(asked, ["/robots.txt", "/a", "/check", "/a", "/b"]);
}

/// The same chain where `/a` never takes the cookie: asked again once with it, `/a`
/// redirects to `/check` again, whose cookie it has had: a loop, and nothing more is
/// asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_check_that_never_passes_is_still_a_loop() {
    let (authority, log) = cookie_check_elsewhere::start(false).await;
    let url = |path: &str| format!("http://{authority}{path}");
    let harness = Harness::default();
    harness.crawl(&[url("/a")], "").await;
    let db = harness.db().await;

    let a = db.page(&url("/a")).await.expect("a row");
    assert_eq!(
        (a.error_kind.as_deref(), a.error.clone()),
        (
            Some("redirect"),
            Some(format!("a redirect loop: back to {}", url("/check")))
        ),
        "{a:?}"
    );
    let asked = log.lock().expect("log").clone();
    assert_eq!(asked, ["/robots.txt", "/a", "/check", "/a"]);
}

/// Serves `/robots.txt` (empty), `/` (a link to the other host) and `/end` on two
/// loopback hosts, logging each request's host, path and the headers named.
pub(super) mod header_log {
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::extract::{Request, State};
    use axum::http::header;
    use axum::response::{IntoResponse, Response};
    use axum::Router;
    use tokio::net::TcpListener;

    use super::super::tls::TlsSite;

    pub type Log = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

    pub async fn start() -> ([String; 2], Log) {
        let log = Log::default();
        let mut authorities = Vec::new();
        let mut listeners = Vec::new();
        for ip in ["127.0.0.1", "127.0.0.2"] {
            let listener = TcpListener::bind((ip, 0)).await.expect("bind");
            authorities.push(listener.local_addr().expect("address").to_string());
            listeners.push(listener);
        }
        for (i, listener) in listeners.into_iter().enumerate() {
            let app = app(&log, &format!("http://{}", authorities[1 - i]));
            tokio::spawn(async move { axum::serve(listener, app).await });
        }
        ([authorities[0].clone(), authorities[1].clone()], log)
    }

    /// A `[[fetch.host]]` rule with a token for 127.0.0.1, whose sites are on loopback
    /// and one of them over TLS with a certificate of its own.
    pub const TOKEN_RULE: &str = "[network]\nallow = [\"127.0.0.0/8\"]\n\
                                  [fetch]\naccept_invalid_certs = true\n\
                                  [[fetch.host]]\npattern = \"127.0.0.1\"\n\
                                  headers = { Authorization = \"Bearer secret\" }\n";

    /// A site over plain http and one over TLS on 127.0.0.1, each one's `/` linking to
    /// the plain one's; returns the plain one's authority.
    pub async fn plain_and_tls(log: &Log) -> (String, TlsSite) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let plain = listener.local_addr().expect("address").to_string();
        let app = app(log, &format!("http://{plain}"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let tls = TlsSite::serving(self::app(log, &format!("http://{plain}"))).await;
        (plain, tls)
    }

    /// What the two sites of [`plain_and_tls`] were asked, with the token over TLS only.
    pub fn token_over_tls_only(
        plain: &str,
        tls: &TlsSite,
    ) -> Vec<(String, Option<String>, Option<String>)> {
        let mut expected = Vec::new();
        for (authority, authorization) in [(tls.authority(), Some("Bearer secret")), (plain, None)]
        {
            for path in ["/", "/end", "/robots.txt"] {
                expected.push((
                    format!("{authority}{path}"),
                    None,
                    authorization.map(str::to_owned),
                ));
            }
        }
        expected.sort();
        expected
    }

    /// The site, its `/` linking to `other`'s (a scheme and an authority).
    pub fn app(log: &Log, other: &str) -> Router {
        Router::new()
            .fallback(serve)
            .with_state((Arc::clone(log), other.to_owned()))
    }

    async fn serve(State((log, other)): State<(Log, String)>, request: Request) -> Response {
        let named = |name: header::HeaderName| {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let host = named(header::HOST).unwrap_or_default();
        let path = request.uri().path().to_owned();
        log.lock().unwrap_or_else(PoisonError::into_inner).push((
            format!("{host}{path}"),
            named(header::FROM),
            named(header::AUTHORIZATION),
        ));
        let body = match path.as_str() {
            "/robots.txt" => String::new(),
            "/" => format!("<a href='{other}/'>other</a><a href='/end'>end</a>"),
            _ => "<title>End</title>".to_owned(),
        };
        ([(header::CONTENT_TYPE, "text/html")], body).into_response()
    }
}

/// `fetch.headers` go with every request; a `[[fetch.host]]` rule's (a token) only to
/// the hosts it names, robots.txt included, and never to a host a link leads to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_request_headers_go_where_the_config_says_only() {
    let ([one, two], log) = header_log::start().await;
    let harness = Harness::default();
    let extra = "[scope]\nhosts = [\"127.0.0.1\", \"127.0.0.2\"]\n\
                 [network]\nallow = [\"127.0.0.0/8\"]\n\
                 [fetch.headers]\nFrom = \"ops@example.com\"\n\
                 [[fetch.host]]\npattern = \"127.0.0.2\"\n\
                 headers = { Authorization = \"Bearer secret\" }\n";
    harness.crawl(&[format!("http://{one}/")], extra).await;

    let mut seen = log.lock().expect("log").clone();
    seen.sort();
    let from = Some("ops@example.com".to_owned());
    let token = Some("Bearer secret".to_owned());
    let mut expected = Vec::new();
    for (authority, authorization) in [(&one, None), (&two, token)] {
        for path in ["/", "/end", "/robots.txt"] {
            expected.push((
                format!("{authority}{path}"),
                from.clone(),
                authorization.clone(),
            ));
        }
    }
    assert_eq!(seen, expected);
}

/// A site that negotiates its answer (a web framework serving JSON to clients that take
/// anything, HTML to those that prefer it, as browsers say they do) gives the crawler its
/// pages, as it gives browsers; `fetch.headers` may still ask for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_asked_for_as_html_unless_the_config_says_otherwise() {
    use axum::http::header;
    use axum::response::IntoResponse;

    async fn negotiate(request: axum::extract::Request) -> axum::response::Response {
        let accept = request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("*/*");
        if accept.starts_with("text/html") {
            ([(header::CONTENT_TYPE, "text/html")], "<title>Page</title>").into_response()
        } else {
            let json = r#"{"title": "Page"}"#;
            ([(header::CONTENT_TYPE, "application/json")], json).into_response()
        }
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let seed = format!("http://{}/", listener.local_addr().expect("address"));
    tokio::spawn(
        async move { axum::serve(listener, axum::Router::new().fallback(negotiate)).await },
    );
    let mut types = Vec::new();
    for extra in ["", "[fetch.headers]\nAccept = \"*/*\"\n"] {
        let harness = Harness::default();
        harness.crawl(std::slice::from_ref(&seed), extra).await;
        let row = harness.db().await.page(&seed).await.expect("a row");
        types.push((row.content_type, row.title));
    }
    let page = (Some("text/html".to_owned()), Some("Page".to_owned()));
    let json = (Some("application/json".to_owned()), None);
    assert_eq!(types, [page, json]);
}

/// An `Accept` in `fetch.headers` chooses how pages come, not robots.txt and sitemaps:
/// asked for with `Accept: text/html`, a site that negotiates strictly answered both
/// with a 406, so its robots.txt was taken as none (the path it disallows crawled) and
/// its sitemap went unread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_txt_and_sitemaps_are_asked_for_as_what_they_are_whatever_pages_accept() {
    let mut b = SiteBuilder::bind(1).await;
    let host = b.authority(0);
    let robots = Resource::Typed(
        "text/plain",
        b"User-agent: *\nDisallow: /private\n".to_vec(),
    );
    b.add(
        &host,
        "/robots.txt",
        Resource::Negotiated("text/plain", Box::new(robots)),
    );
    let listed = format!(
        "<?xml version=\"1.0\"?><urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
         <url><loc>http://{host}/listed</loc></url></urlset>"
    );
    let sitemap = Resource::Typed("application/xml", listed.into_bytes());
    b.add(
        &host,
        "/sitemap.xml",
        Resource::Negotiated("xml", Box::new(sitemap)),
    );
    let home = r#"<title>Home</title><a href="/private">private</a>"#;
    b.add(&host, "/", Resource::Html(home.to_owned()));
    b.add(
        &host,
        "/private",
        Resource::Html("<title>Private</title>".to_owned()),
    );
    b.add(
        &host,
        "/listed",
        Resource::Html("<title>Listed</title>".to_owned()),
    );
    let site = b.start();
    let harness = Harness::default();
    let extra = "[fetch.headers]\nAccept = \"text/html\"\n[scope]\nsitemaps = true\n";
    harness.crawl(&[site.url(0, "/")], extra).await;
    assert_eq!(site.count(&site.url(0, "/private")), 0, "disallowed");
    let db = harness.db().await;
    let listed = db.page(&site.url(0, "/listed")).await.expect("listed");
    assert_eq!(listed.title.as_deref(), Some("Listed"));
}

/// A `[[fetch.host]]` rule whose seeds are `https://` sends its token over TLS only: a
/// link to `http://` on the same name gets none, where it went in clear text before (a
/// redirect's target is asked through the same `HttpClient::get`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_an_https_site_is_not_sent_over_plain_http() {
    let log = header_log::Log::default();
    let (plain, tls) = header_log::plain_and_tls(&log).await;
    let harness = Harness::default();
    harness.crawl(&[tls.url("/")], header_log::TOKEN_RULE).await;

    let mut seen = log.lock().expect("log").clone();
    seen.sort();
    assert_eq!(seen, header_log::token_over_tls_only(&plain, &tls));
}

/// A cookie check whose second answer is slow: the resend has what is left of
/// `fetch.timeout_ms`, not a whole timeout of its own, so a server that answers the
/// check in 600 ms and the page in 800 ms holds a worker and its host's turn no longer
/// than the 1 s a fetch may take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_checks_resend_takes_no_more_than_what_is_left_of_the_timeout() {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;

    async fn slow_check(request: axum::extract::Request) -> axum::response::Response {
        if request.uri().path() == "/robots.txt" {
            return StatusCode::NOT_FOUND.into_response();
        }
        if request.headers().contains_key(header::COOKIE) {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            return ([(header::CONTENT_TYPE, "text/html")], "<title>Home</title>").into_response();
        }
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        let headers = [(header::LOCATION, "/"), (header::SET_COOKIE, "consent=yes")];
        (StatusCode::FOUND, headers).into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let seed = format!("http://{}/", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(slow_check);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let harness = Harness::default();
    let extra = "[fetch]\ntimeout_ms = 1000\n[retry]\nmax_attempts = 1\n";
    harness.crawl(std::slice::from_ref(&seed), extra).await;
    let row = harness.db().await.page(&seed).await.expect("a row");
    assert_eq!(
        (row.status, row.error_kind.as_deref()),
        (None, Some("timeout")),
        "{row:?}"
    );
}

/// A cookie check whose answer has more header bytes than `fetch.max_header_bytes`: the
/// answer is refused, and so are its cookies. reqwest handed them to the jar before the
/// head was checked, so the crawler sent back the cookie of a response it had refused,
/// asked again with it, and stored the page as passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_answer_leaves_no_cookie() {
    use std::sync::{Arc, Mutex, PoisonError};

    use axum::extract::{Request, State};
    use axum::http::{header, StatusCode};
    use axum::response::{IntoResponse, Response};

    type Log = Arc<Mutex<Vec<(String, bool)>>>;

    async fn oversized_check(State(log): State<Log>, request: Request) -> Response {
        let path = request.uri().path().to_owned();
        let cookie = request.headers().contains_key(header::COOKIE);
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((path.clone(), cookie));
        if path == "/robots.txt" {
            return StatusCode::NOT_FOUND.into_response();
        }
        if cookie {
            return ([(header::CONTENT_TYPE, "text/html")], "<title>Home</title>").into_response();
        }
        let headers = [
            (header::LOCATION, "/".to_owned()),
            (header::SET_COOKIE, "consent=yes".to_owned()),
            (header::WARNING, "f".repeat(80 * 1024)),
        ];
        (StatusCode::FOUND, headers).into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let seed = format!("http://{}/", listener.local_addr().expect("address"));
    let log = Log::default();
    let app = axum::Router::new()
        .fallback(oversized_check)
        .with_state(Arc::clone(&log));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let harness = Harness::default();
    harness
        .crawl(std::slice::from_ref(&seed), "[retry]\nmax_attempts = 2\n")
        .await;
    let row = harness.db().await.page(&seed).await.expect("a row");
    assert_eq!(
        (row.status, row.error_kind.as_deref()),
        (None, Some("headers")),
        "{row:?}"
    );
    let asked = log.lock().expect("log").clone();
    assert!(
        asked.iter().all(|(_, cookie)| !cookie),
        "a refused answer's cookie was sent: {asked:?}"
    );
}

/// The seen cache is only a cache: a link found again once it has forgotten the URL (or
/// with it off) reaches the writer again, and was counted again against its URL family's
/// `traps.family_budget`, so the family's next new URL was a trap with fewer new URLs
/// than the budget: here a fourth item of a budget of 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_found_again_spends_nothing_more_of_its_familys_budget() {
    let site = TestSite::one_host(&[
        (
            "/",
            "<a href='/item/1'>1</a><a href='/item/2'>2</a><a href='/item/3'>3</a>",
        ),
        ("/item/1", "<a href='/item/2'>2</a><a href='/item/3'>3</a>"),
        ("/item/2", "<a href='/item/1'>1</a><a href='/item/3'>3</a>"),
        ("/item/3", "<a href='/item/1'>1</a><a href='/item/4'>4</a>"),
        ("/item/4", "<title>Four</title>"),
    ])
    .await;
    let harness = Harness::default();
    harness
        .crawl(
            &[site.url(0, "/")],
            "[frontier]\nseen_cache = 0\n[traps]\nfamily_budget = 4\n",
        )
        .await;
    let db = harness.db().await;
    let item = db.page(&site.url(0, "/item/4")).await;
    assert_eq!(
        item.map(|p| (p.status, p.error_kind)),
        Some((Some(200), None)),
        "the family has 4 URLs, within its budget"
    );
}

/// A `<base href>` is a URL of its page, parsed in the page's encoding as its links are
/// (the HTML standard's frozen base URL is parsed with the document's character
/// encoding): on a windows-1252 page, `<base href='/search?q=café'>` is
/// `/search?q=caf%E9`, and `<a href='#results'>` (or `href=''`) leads there, as a browser
/// follows it, not to `?q=caf%C3%A9`, a search the site's own form never sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_hrefs_query_is_spelled_in_its_pages_encoding() {
    let raw = RawSite::start(vec![
        (
            "/",
            RawReply::ok(
                "text/html; charset=windows-1252",
                b"<head><base href='/search?q=caf\xe9'></head><a href='#results'>Results</a>"
                    .to_vec(),
            ),
        ),
        (
            "/search?q=caf%E9",
            RawReply::ok("text/html", "<title>Results</title>"),
        ),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;
    let db = harness.db().await;
    assert_eq!(
        db.links().await,
        [(
            raw.url("/"),
            raw.url("/search?q=caf%E9"),
            "Results".to_owned()
        )]
    );
    assert_eq!(raw.count("/search?q=caf%E9"), 1);
    assert_eq!(raw.count("/search?q=caf%C3%A9"), 0);
}

/// A `%` that starts no escape (`100%.pdf`, `?q=50%off`) is sent as the page wrote it, as
/// browsers send it: the URL standard's percent-encode sets leave `%` alone. Written
/// `%25`, it asked the server for another resource (a server that refuses the bare `%`
/// with a 400, as Apache and nginx do, serves the escaped one), so a link checker
/// reported a link its readers cannot follow as working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_percent_that_starts_no_escape_is_requested_as_written() {
    let raw = RawSite::start(vec![
        (
            "/",
            RawReply::ok(
                "text/html",
                "<a href='/files/100%.pdf'>Report</a><a href='/search?q=50%off'>Sale</a>",
            ),
        ),
        (
            "/files/100%.pdf",
            RawReply::ok("text/html", "<title>Report</title>"),
        ),
        (
            "/search?q=50%off",
            RawReply::ok("text/html", "<title>Sale</title>"),
        ),
    ])
    .await;
    let harness = Harness::default();
    harness.crawl(&[raw.url("/")], "").await;
    let db = harness.db().await;
    let mut links = db.links().await;
    links.sort();
    assert_eq!(
        links,
        [
            (
                raw.url("/"),
                raw.url("/files/100%.pdf"),
                "Report".to_owned()
            ),
            (raw.url("/"), raw.url("/search?q=50%off"), "Sale".to_owned()),
        ]
    );
    for (path, title) in [("/files/100%.pdf", "Report"), ("/search?q=50%off", "Sale")] {
        assert_eq!(raw.count(path), 1, "{path}");
        let row = db.page(&raw.url(path)).await;
        assert_eq!(row.and_then(|p| p.title).as_deref(), Some(title), "{path}");
    }
}
