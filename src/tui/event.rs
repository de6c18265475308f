//! TUI layer: keys to intents. Pure: a key event in, an [`Action`] out.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Enter: open or close the detail pane of the selected process.
    Detail,
    /// Tab: the next view (processes, mappings, sharing).
    NextView,
    /// s: the next sort key (flat list).
    Sort,
    /// t: tree or flat list.
    TreeFlat,
    /// p: pause or resume sampling.
    Pause,
    /// e: the explain overlay.
    Explain,
    /// ?: the help overlay.
    Help,
    /// Esc: close an overlay, or quit when none is open.
    Back,
    /// q, Ctrl-Q, Ctrl-C.
    Quit,
    /// ← / →: a replay's sample before or after (Shift: ten).
    Earlier(usize),
    Later(usize),
}

pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c' | 'q') if ctrl => Action::Quit,
        // Any other letter with Ctrl or Alt is the terminal's or the window manager's, not ours.
        KeyCode::Char(_) if ctrl || key.modifiers.contains(KeyModifiers::ALT) => return None,
        KeyCode::Left => {
            Action::Earlier(if key.modifiers.contains(KeyModifiers::SHIFT) { 10 } else { 1 })
        }
        KeyCode::Right => {
            Action::Later(if key.modifiers.contains(KeyModifiers::SHIFT) { 10 } else { 1 })
        }
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Home,
        KeyCode::End | KeyCode::Char('G') => Action::End,
        KeyCode::Enter => Action::Detail,
        KeyCode::Tab => Action::NextView,
        KeyCode::Char('s') => Action::Sort,
        KeyCode::Char('t') => Action::TreeFlat,
        KeyCode::Char('p') | KeyCode::Char(' ') => Action::Pause,
        KeyCode::Char('e') => Action::Explain,
        KeyCode::Char('?') | KeyCode::Char('h') | KeyCode::F(1) => Action::Help,
        KeyCode::Esc => Action::Back,
        KeyCode::Char('q') => Action::Quit,
        _ => return None,
    })
}

/// Every key, for the help overlay: (keys, what they do).
pub const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "select a process (or a row of the view); scroll the explanation"),
    ("PgUp PgDn", "a page up or down"),
    ("← →  Shift", "replay: the sample before or after (ten with Shift)"),
    ("Home End  g G", "the first or the last row"),
    ("Enter", "detail of the selected process: largest mappings, who it shares with"),
    ("Tab", "next view: processes, mappings by name, who shares with whom"),
    ("s", "sort the flat list: RSS, PSS, USS, shared, swap, pid"),
    ("t", "tree or flat list"),
    ("p  Space", "pause or resume sampling"),
    ("e", "explain what the numbers mean for this tree"),
    ("?  h  F1", "this help"),
    ("Esc", "close an overlay or the detail pane; quit when none is open"),
    ("q  Ctrl-Q  Ctrl-C", "quit"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(action(key(KeyCode::Char('j'))), Some(Action::Down));
        assert_eq!(action(key(KeyCode::Down)), Some(Action::Down));
        assert_eq!(action(key(KeyCode::Char('k'))), Some(Action::Up));
        assert_eq!(action(key(KeyCode::PageDown)), Some(Action::PageDown));
        assert_eq!(action(key(KeyCode::Enter)), Some(Action::Detail));
        assert_eq!(action(key(KeyCode::Tab)), Some(Action::NextView));
        assert_eq!(action(key(KeyCode::Char('s'))), Some(Action::Sort));
        assert_eq!(action(key(KeyCode::Char('t'))), Some(Action::TreeFlat));
        assert_eq!(action(key(KeyCode::Char('p'))), Some(Action::Pause));
        assert_eq!(action(key(KeyCode::Char('e'))), Some(Action::Explain));
        assert_eq!(action(key(KeyCode::Char('?'))), Some(Action::Help));
        assert_eq!(action(key(KeyCode::Esc)), Some(Action::Back));
        assert_eq!(action(key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(action(key(KeyCode::Char('x'))), None);
        assert_eq!(action(key(KeyCode::Left)), Some(Action::Earlier(1)));
        assert_eq!(
            action(KeyEvent::new(KeyCode::Right, KeyModifiers::SHIFT)),
            Some(Action::Later(10))
        );
        let with = |c, m| action(KeyEvent::new(KeyCode::Char(c), m));
        assert_eq!(with('q', KeyModifiers::CONTROL), Some(Action::Quit));
        assert_eq!(with('x', KeyModifiers::ALT), None);
        assert_eq!(with('q', KeyModifiers::ALT), None);
        assert_eq!(with('s', KeyModifiers::CONTROL), None);
        assert_eq!(with('G', KeyModifiers::SHIFT), Some(Action::End));
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(action(release), None);
    }
}
