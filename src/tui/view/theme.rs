//! TUI layer, views: the colours and styles every view draws with — the 16 basic ANSI colours,
//! or none at all (NO_COLOR) — and the glyphs of the RSS bar.

use ratatui::style::{Color, Modifier, Style};

/// Styles for one frame.
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(&self, color: Color) -> Style {
        if self.color { Style::default().fg(color) } else { Style::default() }
    }
    pub fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    /// Secondary text beside a figure or a name (dim when colour is on, plain otherwise).
    pub fn dim(&self) -> Style {
        if self.color { Style::default().add_modifier(Modifier::DIM) } else { Style::default() }
    }
    pub fn selected(&self) -> Style {
        if self.color {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
}

/// The bar's segments: private, shared within the tree, shared outside it, duplicated.
pub const SEGMENTS: [(char, Color, &str); 4] = [
    ('█', Color::Green, "private"),
    ('▓', Color::Cyan, "shared in tree"),
    ('▒', Color::Blue, "shared outside"),
    ('░', Color::Red, "duplicated"),
];
