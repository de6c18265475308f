//! TUI layer, views: one file per pane or overlay, as ratatui's demo keeps one file per tab.
//! Each `render` reads the [`crate::tui::app::App`] and draws into its area; none changes
//! anything, reads the clock or computes a figure (figures come from the model, words from
//! `report::explain`).

pub mod detail;
pub mod header;
pub mod mappings;
pub mod overlays;
pub mod processes;
pub mod sharing;
pub mod table;
pub mod theme;
pub mod timeline;
