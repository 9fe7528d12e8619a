//! What stderr's terminal takes, as the terminal and the user's environment say: colours
//! and escape codes go only where they are wanted and drawn.

use std::ffi::OsStr;
use std::io::IsTerminal;

/// Whether stderr is a terminal that draws escape codes: one whose `TERM` names a kind
/// of terminal, not `dumb` (Emacs' shell, an editor's pane), which shows them as text.
pub fn stderr_draws() -> bool {
    std::io::stderr().is_terminal() && draws(std::env::var_os("TERM").as_deref())
}

/// Whether log lines on stderr are coloured: on a terminal that draws, unless `NO_COLOR`
/// is set (no-color.org): a user who cannot tell colours apart, or whose screen reader
/// reads the codes out, asks every program so.
pub fn stderr_colours() -> bool {
    colours(std::env::var_os("NO_COLOR").as_deref()) && stderr_draws()
}

/// Whether a terminal of kind `term` (`TERM`) draws escape codes: unset (as `console`,
/// which draws the progress bar, takes it) or `dumb`, it does not.
fn draws(term: Option<&OsStr>) -> bool {
    term.is_some_and(|term| term != "dumb")
}

/// Whether `NO_COLOR` leaves colours on: unset or empty, as no-color.org has it.
fn colours(no_color: Option<&OsStr>) -> bool {
    no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::{colours, draws};

    #[test]
    fn a_dumb_or_unnamed_terminal_draws_no_escape_codes() {
        assert!(draws(Some(OsStr::new("xterm-256color"))));
        assert!(!draws(Some(OsStr::new("dumb"))));
        assert!(!draws(None));
    }

    #[test]
    fn no_color_set_to_anything_but_nothing_turns_colours_off() {
        assert!(colours(None));
        assert!(colours(Some(OsStr::new(""))));
        assert!(!colours(Some(OsStr::new("1"))));
        assert!(!colours(Some(OsStr::new("0"))));
    }
}
