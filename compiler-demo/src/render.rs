//! Rendering diagnostics as text, in rustc's layout:
//!
//! ```text
//! error[E0308]: mismatched types
//!  --> main.wd:2:18
//!   |
//! 2 |     let x: i64 = true;
//!   |            ---   ^^^^ expected `i64`, found `bool`
//!   |            |
//!   |            expected due to this
//!   |
//!   = note: a note without a snippet
//! note: a note with a snippet of its own
//!  --> main.wd:1:4
//!   |
//! 1 | fn f() {}
//!   |    ^
//! ```
//!
//! The gutter is as wide as the largest line number in the whole diagnostic, notes
//! included, and `-->` sits in it as rustc puts it. Between labelled lines one missing
//! line is shown and more are elided (`...`); labels in another file follow under
//! `:::`. Columns count characters, a tab as four. One label per snippet may span
//! several lines, drawn with `/`, `|` and `_`; any other multi-line label is shown on
//! its first line. No output line ends in a space.

use crate::diagnostics::{Diag, Label};
use crate::source::{SourceFile, SourceMap, Span};
use std::fmt::Write as _;

/// Renders diagnostics followed by rustc's summary line.
pub fn render(files: &SourceMap, diags: &[Diag]) -> String {
    let mut text = render_plain(files, diags);
    match diags.len() {
        0 => {}
        1 => text.push_str("error: aborting due to 1 previous error\n"),
        n => text.push_str(&format!("error: aborting due to {n} previous errors\n")),
    }
    text
}

/// Renders diagnostics, each followed by a blank line, without the summary line.
pub fn render_plain(files: &SourceMap, diags: &[Diag]) -> String {
    let mut out = Output::default();
    for d in diags {
        diagnostic(&mut out, files, d);
    }
    out.text
}

/// Text being built line by line; every line is stripped of trailing spaces.
#[derive(Default)]
struct Output {
    text: String,
}

impl Output {
    fn line(&mut self, line: &str) {
        self.text.push_str(line.trim_end());
        self.text.push('\n');
    }
}

/// A label placed in its file: lines (0-based) and display columns (0-based).
struct Placed<'a> {
    file: &'a SourceFile,
    file_id: u32,
    span: Span,
    start_line: usize,
    start_col: usize,
    /// Line and column of the label's last character (its first, if it is empty).
    last_line: usize,
    last_col: usize,
    primary: bool,
    text: &'a str,
}

impl Placed<'_> {
    fn is_multiline(&self) -> bool {
        self.start_line != self.last_line
    }
}

fn place<'a>(files: &'a SourceMap, label: &'a Label) -> Option<Placed<'a>> {
    let file = files.get(label.span.file())?;
    let len = file.text().len();
    let start = (label.span.start as usize).min(len);
    let end = (label.span.end as usize).clamp(start, len);
    let last = floor_char(file.text(), end.saturating_sub(1).max(start));
    let (start_line, start_col) = position(file, start);
    let (last_line, last_col) = position(file, last);
    Some(Placed {
        file,
        file_id: label.span.file,
        span: label.span,
        start_line,
        start_col,
        last_line,
        last_col,
        primary: label.primary,
        text: &label.text,
    })
}

/// The start of the character containing byte `i`.
fn floor_char(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn line_of(file: &SourceFile, offset: usize) -> usize {
    match file.line_starts().binary_search(&offset) {
        Ok(l) => l,
        Err(l) => l.saturating_sub(1),
    }
}

/// The raw text of line `line`, without its line ending.
fn raw_line(file: &SourceFile, line: usize) -> &str {
    let text = file.text();
    let starts = file.line_starts();
    let start = starts
        .get(line)
        .copied()
        .unwrap_or(text.len())
        .min(text.len());
    let end = starts.get(line + 1).copied().unwrap_or(text.len());
    let s = text.get(start..end.max(start)).unwrap_or("");
    s.trim_end_matches(['\n', '\r'])
}

/// Display width of a piece of a line: characters, a tab counting four.
fn width_of(s: &str) -> usize {
    s.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum()
}

/// Line and display column of a byte offset.
fn position(file: &SourceFile, offset: usize) -> (usize, usize) {
    let line = line_of(file, offset);
    let start = file.line_starts().get(line).copied().unwrap_or(0);
    let before = file.text().get(start..offset).unwrap_or("");
    (line, width_of(before))
}

/// A line as displayed: tabs expanded to four spaces.
fn display_line(file: &SourceFile, line: usize) -> String {
    raw_line(file, line).replace('\t', "    ")
}

/// `path:line:col` of a label's start, 1-based, as rustc prints it.
fn location(files: &SourceMap, span: Span) -> String {
    let Some(file) = files.get(span.file()) else {
        return String::new();
    };
    let (line, col) = file.line_col((span.start as usize).min(file.text().len()));
    format!("{}:{line}:{col}", file.path)
}

fn diagnostic(out: &mut Output, files: &SourceMap, d: &Diag) {
    let head = match d.code {
        Some(code) => format!("error[{code}]: {}", d.message),
        None => format!("error: {}", d.message),
    };
    out.line(&head);
    let main: Vec<Placed> = d.labels.iter().filter_map(|l| place(files, l)).collect();
    let children: Vec<Vec<Placed>> = d
        .children
        .iter()
        .map(|c| c.labels.iter().filter_map(|l| place(files, l)).collect())
        .collect();
    let max_line = main
        .iter()
        .chain(children.iter().flatten())
        .map(|p| p.last_line + 1)
        .max()
        .unwrap_or(1);
    let width = max_line.to_string().len();
    let pad = " ".repeat(width);
    snippets(out, files, &main, &pad);
    if !d.children.is_empty() {
        out.line(&format!("{pad} |"));
    }
    for (child, placed) in d.children.iter().zip(&children) {
        let level = child.level.as_str();
        if placed.is_empty() {
            out.line(&format!("{pad} = {level}: {}", child.message));
        } else {
            out.line(&format!("{level}: {}", child.message));
            snippets(out, files, placed, &pad);
        }
    }
    out.line("");
}

/// The snippets for a set of labels: the primary label's file under `-->`, then each
/// other file under `:::`.
fn snippets(out: &mut Output, files: &SourceMap, labels: &[Placed], pad: &str) {
    let Some(first) = labels.iter().find(|p| p.primary).or(labels.first()) else {
        return;
    };
    let mut order = vec![first.file_id];
    for p in labels {
        if !order.contains(&p.file_id) {
            order.push(p.file_id);
        }
    }
    for (i, file_id) in order.into_iter().enumerate() {
        let group: Vec<&Placed> = labels.iter().filter(|p| p.file_id == file_id).collect();
        if i == 0 {
            out.line(&format!("{pad}--> {}", location(files, first.span)));
        } else {
            out.line(&format!("{pad} |"));
            out.line(&format!("{pad}::: {}", location(files, group[0].span)));
        }
        out.line(&format!("{pad} |"));
        file_snippet(out, &group, pad);
    }
}

/// A label confined to one line, as drawn under it.
struct LineLabel<'a> {
    start: usize,
    /// Column of the last underlined character.
    last: usize,
    primary: bool,
    text: &'a str,
}

/// The one multi-line label of a snippet.
struct Multi<'a> {
    start_line: usize,
    start_col: usize,
    last_line: usize,
    last_col: usize,
    primary: bool,
    text: &'a str,
    /// The label starts at the first non-blank character of its line: the line is
    /// marked `/` instead of by an underscore rule.
    slash: bool,
}

/// Inner lines of a multi-line label shown in full; longer ones keep two at each end.
const MULTILINE_INNER_LINES: usize = 4;

fn file_snippet(out: &mut Output, labels: &[&Placed], pad: &str) {
    let file = labels[0].file;
    let multi_index = labels.iter().position(|p| p.is_multiline() && p.primary);
    let multi_index = multi_index.or_else(|| labels.iter().position(|p| p.is_multiline()));
    let multi = multi_index.map(|i| {
        let p = labels[i];
        let before = &raw_line(file, p.start_line);
        let indent = width_of(&before[..before.len() - before.trim_start().len()]);
        Multi {
            start_line: p.start_line,
            start_col: p.start_col,
            last_line: p.last_line,
            last_col: p.last_col,
            primary: p.primary,
            text: p.text,
            slash: p.start_col <= indent,
        }
    });
    let mut by_line: Vec<(usize, LineLabel)> = Vec::new();
    for (i, p) in labels.iter().enumerate() {
        if Some(i) == multi_index {
            continue;
        }
        let last = if p.is_multiline() {
            // Shown on its first line only, to the end of that line.
            width_of(raw_line(file, p.start_line))
                .saturating_sub(1)
                .max(p.start_col)
        } else {
            p.last_col.max(p.start_col)
        };
        let label = LineLabel {
            start: p.start_col,
            last,
            primary: p.primary,
            text: p.text,
        };
        by_line.push((p.start_line, label));
    }
    let mut lines: Vec<usize> = by_line.iter().map(|(l, _)| *l).collect();
    if let Some(m) = &multi {
        let inner = m.start_line + 1..m.last_line;
        if inner.len() <= MULTILINE_INNER_LINES {
            lines.extend(inner);
        } else {
            lines.extend([inner.start, inner.start + 1, inner.end - 2, inner.end - 1]);
        }
        lines.extend([m.start_line, m.last_line]);
    }
    lines.sort_unstable();
    lines.dedup();
    let mut prev: Option<usize> = None;
    for &line in &lines {
        match prev {
            Some(p) if line == p + 2 => source_row(out, file, p + 1, multi.as_ref(), pad),
            Some(p) if line > p + 2 => out.line("..."),
            _ => {}
        }
        source_row(out, file, line, multi.as_ref(), pad);
        let here: Vec<&LineLabel> = by_line
            .iter()
            .filter(|(l, _)| *l == line)
            .map(|(_, label)| label)
            .collect();
        let Some(m) = &multi else {
            for row in label_rows(&here) {
                out.line(&format!("{pad} | {row}"));
            }
            prev = Some(line);
            continue;
        };
        let marker = if m.primary { '^' } else { '-' };
        if line == m.start_line && !m.slash {
            let rule = "_".repeat(m.start_col);
            out.line(&format!("{pad} |  _{rule}{marker}"));
        }
        let inside = (m.start_line..=m.last_line).contains(&line);
        let bar = if inside { "| " } else { "  " };
        for row in label_rows(&here) {
            out.line(&format!("{pad} | {bar}{row}"));
        }
        if line == m.last_line {
            let rule = "_".repeat(m.last_col);
            let text = if m.text.is_empty() {
                String::new()
            } else {
                format!(" {}", m.text)
            };
            out.line(&format!("{pad} | |_{rule}{marker}{text}"));
        }
        prev = Some(line);
    }
}

/// A source line with its number, and the multi-line label's column if there is one.
fn source_row(out: &mut Output, file: &SourceFile, line: usize, multi: Option<&Multi>, pad: &str) {
    let text = display_line(file, line);
    let bar = match multi {
        None => "",
        Some(m) if line == m.start_line && m.slash => "/ ",
        Some(m) if line > m.start_line && line <= m.last_line => "| ",
        Some(_) => "  ",
    };
    let number = format!("{:<width$}", line + 1, width = pad.len());
    out.line(&format!("{number} | {bar}{text}"));
}

/// The rows under one source line: the underlines, the rightmost label's text after
/// them, and the other labels' texts hanging below on `|` connectors, right to left.
fn label_rows(labels: &[&LineLabel]) -> Vec<String> {
    if labels.is_empty() {
        return Vec::new();
    }
    let mut sorted: Vec<&LineLabel> = labels.to_vec();
    sorted.sort_by_key(|l| (l.start, l.last));
    let end = sorted.iter().map(|l| l.last + 1).max().unwrap_or(0);
    let mut underline = vec![' '; end];
    for l in sorted.iter().filter(|l| !l.primary) {
        underline[l.start..=l.last].fill('-');
    }
    for l in sorted.iter().filter(|l| l.primary) {
        underline[l.start..=l.last].fill('^');
    }
    let mut first: String = underline.into_iter().collect();
    let inline = sorted.last().filter(|l| !l.text.is_empty());
    if let Some(l) = inline {
        let _ = write!(first, " {}", l.text);
    }
    let mut rows = vec![first];
    let mut hanging: Vec<&LineLabel> = sorted
        .iter()
        .take(sorted.len() - usize::from(inline.is_some()))
        .filter(|l| !l.text.is_empty())
        .copied()
        .collect();
    hanging.sort_by_key(|l| std::cmp::Reverse(l.start));
    if hanging.is_empty() {
        return rows;
    }
    let pipes = |of: &[&LineLabel]| {
        let mut row = vec![' '; of.iter().map(|l| l.start + 1).max().unwrap_or(0)];
        for l in of {
            row[l.start] = '|';
        }
        row
    };
    rows.push(pipes(&hanging).into_iter().collect());
    for (i, l) in hanging.iter().enumerate() {
        let mut row = pipes(&hanging[i + 1..]);
        row.resize(row.len().max(l.start), ' ');
        row.truncate(l.start);
        let mut row: String = row.into_iter().collect();
        row.push_str(l.text);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::FileId;
    use std::sync::Arc;

    fn files(text: &str) -> SourceMap {
        SourceMap {
            files: vec![Arc::new(SourceFile::new(
                "main.wd".into(),
                text.as_bytes().to_vec(),
            ))],
        }
    }

    fn span(text: &str, needle: &str) -> Span {
        let start = text.find(needle).expect("needle in text");
        Span::new(FileId(0), start, start + needle.len())
    }

    #[test]
    fn labels_on_one_line_hang_right_to_left() {
        let text = "fn main() {\n    let x: i64 = true;\n}\n";
        let d = Diag::error("E0308", "mismatched types")
            .at(span(text, "true"), "expected `i64`, found `bool`")
            .with_secondary(span(text, "i64"), "expected due to this");
        let expected = "\
error[E0308]: mismatched types
 --> main.wd:2:18
  |
2 |     let x: i64 = true;
  |            ---   ^^^^ expected `i64`, found `bool`
  |            |
  |            expected due to this

";
        assert_eq!(render_plain(&files(text), &[d]), expected);
    }

    #[test]
    fn the_gutter_fits_the_widest_line_number_notes_included() {
        let mut text = String::new();
        for i in 0..12 {
            text.push_str(&format!("const C{i}: i64 = {i};\n"));
        }
        let d = Diag::error("E0000", "test")
            .at(span(&text, "C1:"), "")
            .note_at(span(&text, "C11"), "here too")
            .note("and a note");
        let expected = "\
error[E0000]: test
  --> main.wd:2:7
   |
2  | const C1: i64 = 1;
   |       ^^^
   |
note: here too
  --> main.wd:12:7
   |
12 | const C11: i64 = 11;
   |       ^^^
   = note: and a note

";
        assert_eq!(render_plain(&files(&text), &[d]), expected);
    }

    #[test]
    fn a_multiline_label_is_drawn_down_the_gutter() {
        let text = "fn f() -> i64 {\n    let x = 1;\n    x;\n}\n";
        let start = text.find("{\n").expect("brace");
        let d = Diag::error("E0308", "mismatched types").at(
            Span::new(FileId(0), start, text.len() - 1),
            "expected `i64`",
        );
        let expected = "\
error[E0308]: mismatched types
 --> main.wd:1:15
  |
1 |   fn f() -> i64 {
  |  _______________^
2 | |     let x = 1;
3 | |     x;
4 | | }
  | |_^ expected `i64`

";
        assert_eq!(render_plain(&files(text), &[d]), expected);
    }

    #[test]
    fn distant_lines_are_elided_and_one_missing_line_is_shown() {
        let text = "a\nb\nc\nd\ne\nf\n";
        let d = Diag::plain("test")
            .at(span(text, "a"), "one")
            .with_secondary(span(text, "c"), "two")
            .with_secondary(span(text, "f"), "three");
        let expected = "\
error: test
 --> main.wd:1:1
  |
1 | a
  | ^ one
2 | b
3 | c
  | - two
...
6 | f
  | - three

";
        assert_eq!(render_plain(&files(text), &[d]), expected);
    }
}
