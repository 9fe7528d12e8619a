//! A user whose files come from Windows, or who crawls from WSL: configs and seeds files
//! saved by Notepad or VS Code, paths written as Windows writes them.

use pipecrawl::Config;

/// What loading `text` as a config says, refused.
fn refused(text: &str) -> String {
    Config::from_toml(text, "crawl.toml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| panic!("taken: {text}"))
}

/// `database = 'C:\crawls\a.db'` is a valid TOML string and a valid Linux file name: the
/// crawl went into a file named `C:\crawls\a.db` in the current directory, never into
/// the Windows folder the user meant. Refused, with the path WSL mounts it at; so is a
/// `\\wsl$\` path, which is this system's own.
#[test]
fn a_windows_path_as_the_database_or_seeds_file_is_refused_with_its_wsl_path() {
    let seeds = "seeds = [\"http://127.0.0.1:1/\"]\n";
    let said = refused(&format!(
        "{seeds}[storage]\ndatabase = 'C:\\crawls\\a.db'\n"
    ));
    assert!(
        said.contains("line 3")
            && said.contains("storage.database")
            && said.contains("/mnt/c/crawls/a.db"),
        "{said}"
    );
    let said = refused(&format!(
        "{seeds}[storage]\ndatabase = '\\\\wsl$\\Ubuntu\\home\\ana\\a.db'\n"
    ));
    assert!(said.contains("/home/ana/a.db"), "{said}");
    let said = refused(&format!("{seeds}seeds_file = 'D:/Lists/seeds.txt'\n"));
    assert!(
        said.contains("seeds_file") && said.contains("/mnt/d/Lists/seeds.txt"),
        "{said}"
    );
}

/// Notepad's "Unicode" is UTF-16 with a byte order mark: the config was refused as
/// "line 1: byte 0xff is not UTF-8", naming a byte no editor shows. It is named as
/// UTF-16, with how to save it as UTF-8.
#[test]
fn a_config_saved_as_utf16_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crawl.toml");
    let text = "seeds = [\"http://127.0.0.1:1/\"]\r\n";
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(&path, utf16).unwrap();
    let said = Config::load(&path)
        .err()
        .map(|e| e.to_string())
        .expect("taken");
    assert!(said.contains("UTF-16") && said.contains("UTF-8"), "{said}");
}

/// Word, Outlook and a phone's keyboard turn `"` into `“` and `”`: TOML said "string
/// values must be quoted", of a value the user sees quoted. The typographic quote is
/// named, with the straight one to type.
#[test]
fn a_smart_quote_typed_for_a_tomls_quote_is_named() {
    for (open, close) in [('“', '”'), ('‘', '’')] {
        let said = refused(&format!(
            "seeds = [\"http://127.0.0.1:1/\"]\n[fetch]\nuser_agent = {open}bot/1.0{close}\n"
        ));
        assert!(
            said.contains(&format!("`{open}`")) && said.contains("straight"),
            "{said}"
        );
    }
}

/// A no-break space (pasted from a web page or a Word document) looks like a space and
/// is none to TOML, which said "invalid unquoted key" with a caret under what looks like
/// nothing. It is named.
#[test]
fn a_no_break_space_in_a_config_line_is_named() {
    for line in ["delay_ms\u{a0}= 0", "delay_ms =\u{a0}0"] {
        let said = refused(&format!(
            "seeds = [\"http://127.0.0.1:1/\"]\n[politeness]\n{line}\n"
        ));
        assert!(said.contains("no-break space"), "{said}");
    }
}

/// A `.bat` file's `%USERPROFILE%` and a shell's `$HOME` are not expanded in a TOML
/// string: the crawl made a directory named `%USERPROFILE%` (or `$HOME`) where it ran
/// and put its database in it, unsaid. Refused, naming the variable; a PostgreSQL
/// URL's password may hold a `$` or `%C3%A9`, and is taken.
#[test]
fn an_environment_variable_in_the_database_path_is_refused_naming_it() {
    let seeds = "seeds = [\"http://127.0.0.1:1/\"]\n[storage]\n";
    for (path, variable) in [
        ("'%USERPROFILE%\\crawls\\a.db'", "%USERPROFILE%"),
        ("'$HOME/crawls/a.db'", "$HOME"),
        ("'${HOME}/crawls/a.db'", "${HOME}"),
    ] {
        let said = refused(&format!("{seeds}database = {path}\n"));
        assert!(
            said.contains("storage.database")
                && said.contains(variable)
                && said.contains("expanded"),
            "{said}"
        );
    }
    let postgres = format!("{seeds}database = 'postgres://u:p$x%C3%A9@127.0.0.1:1/db'\n");
    let taken = Config::from_toml(&postgres, "crawl.toml").map(|_| ());
    assert!(taken.is_ok(), "{taken:?}");
    // Another database's URL, or libpq's keywords, is said as such, its password unsaid.
    for (database, said) in [
        (
            "mysql://crawler:pa$word@db/crawl",
            "names a `mysql://` database",
        ),
        (
            "postgress://u:p%C3%A9@h/db",
            "names a `postgress://` database",
        ),
        ("host=db password=s3cr$t", "postgres://"),
    ] {
        let refusal = refused(&format!("{seeds}database = '{database}'\n"));
        assert!(refusal.contains(said), "{refusal}");
        for secret in ["pa$word", "p%C3%A9", "s3cr$t"] {
            assert!(!refusal.contains(secret), "{refusal}");
        }
    }
}

/// A URL copied from a web page, Teams or Word may carry a zero-width space, invisible:
/// after it, the URL parser took it into the path, and the seed became
/// `/query/%E2%80%8B`, a page nobody asked for; before it, the seed was "not a URL".
/// Around a URL it is no part of it, as a byte order mark is not, nor is a direction mark
/// (one copied from a right-to-left page).
#[test]
fn a_zero_width_space_around_a_seed_is_no_part_of_it() {
    let config = Config::from_toml(
        "seeds = [\"http://127.0.0.1:1/a/\u{200b}\", \"\u{200b}http://127.0.0.1:1/b/\", \
         \"\u{200e}http://127.0.0.1:1/c/\u{200f}\"]\n",
        "crawl.toml",
    )
    .map_err(|e| e.to_string());
    let seeds: Vec<String> = config
        .map(|c| c.seeds.iter().map(|u| u.to_string()).collect())
        .unwrap_or_else(|e| vec![e]);
    assert_eq!(
        seeds,
        [
            "http://127.0.0.1:1/a/",
            "http://127.0.0.1:1/b/",
            "http://127.0.0.1:1/c/"
        ]
    );
}

/// `--config 'C:\crawls\crawl.toml'` was said not found, as if mistyped: it is told as the
/// storage path is, with the path WSL sees it at. A path that is simply missing is not.
#[test]
fn a_windows_path_given_as_the_config_is_told_with_its_wsl_path() {
    let said = |path: &str| match Config::load(std::path::Path::new(path)) {
        Ok(_) => panic!("{path} loaded"),
        Err(e) => e.to_string(),
    };
    let windows = said("C:\\crawls\\crawl.toml");
    assert!(
        windows.contains("No such file") && windows.contains("`/mnt/c/crawls/crawl.toml`"),
        "{windows}"
    );
    let missing = said("no-such-crawl.toml");
    assert!(!missing.contains("Windows"), "{missing}");
}

/// `query --db 'C:\crawls\crawl.db'` (and `export --db`) said only "there is no database
/// at C:\crawls\crawl.db (/cwd/C:\crawls\crawl.db: …)", as if mistyped: told the path WSL
/// sees it at, as `--config` is. A path that is simply missing is not.
#[test]
fn a_windows_path_given_as_the_database_to_query_is_told_with_its_wsl_path() {
    let said = |words: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_pipecrawl"))
            .args(words)
            .output()
            .expect("run the pipecrawl binary");
        assert_eq!(out.status.code(), Some(1), "{words:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    for words in [
        &["query", "--db", "C:\\crawls\\crawl.db", "stats"][..],
        &["export", "--db", "C:\\crawls\\crawl.db", "--out", "out"],
    ] {
        let windows = said(words);
        assert!(
            windows.contains("there is no database at")
                && windows.contains("`/mnt/c/crawls/crawl.db`"),
            "{words:?}: {windows}"
        );
    }
    let missing = said(&["query", "--db", "no-such-crawl.db", "stats"]);
    assert!(!missing.contains("Windows"), "{missing}");
}
