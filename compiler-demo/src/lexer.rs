//! The lexer: text to tokens.
//!
//! Total over every input: any byte sequence yields a token list ending in `Eof`, plus
//! diagnostics for what could not be read. An unknown character becomes one `Error`
//! token (the parser skips it silently), so a stray byte costs one diagnostic.

use rustc_hash::FxHashSet as HashSet;
use std::sync::Arc;

use crate::diagnostics::Diag;
use crate::source::{FileId, Span};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// Shared by every occurrence of the name in the file (see [`lex`]).
    Ident(Arc<str>),
    Int(i64),
    // Keywords.
    Fn,
    Struct,
    Const,
    Type,
    Use,
    Pub,
    Let,
    Mut,
    If,
    Else,
    While,
    Return,
    True,
    False,
    As,
    Crate,
    SelfKw,
    Super,
    // Punctuation.
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Colon,
    ColonColon,
    Dot,
    Arrow,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    AndAnd,
    OrOr,
    Bang,
    /// Something the lexer could not read; already diagnosed.
    Error,
    Eof,
}

impl TokenKind {
    /// How the token is quoted in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Ident(s) => format!("identifier `{s}`"),
            TokenKind::Int(n) => format!("integer `{n}`"),
            TokenKind::Eof => "end of file".to_string(),
            TokenKind::Error => "invalid token".to_string(),
            other => format!("`{}`", other.text()),
        }
    }

    fn text(&self) -> &'static str {
        use TokenKind::*;
        match self {
            Fn => "fn",
            Struct => "struct",
            Const => "const",
            Type => "type",
            Use => "use",
            Pub => "pub",
            Let => "let",
            Mut => "mut",
            If => "if",
            Else => "else",
            While => "while",
            Return => "return",
            True => "true",
            False => "false",
            As => "as",
            Crate => "crate",
            SelfKw => "self",
            Super => "super",
            LParen => "(",
            RParen => ")",
            LBrace => "{",
            RBrace => "}",
            Comma => ",",
            Semi => ";",
            Colon => ":",
            ColonColon => "::",
            Dot => ".",
            Arrow => "->",
            Star => "*",
            Plus => "+",
            Minus => "-",
            Slash => "/",
            Percent => "%",
            Eq => "=",
            EqEq => "==",
            NotEq => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            AndAnd => "&&",
            OrOr => "||",
            Bang => "!",
            Ident(_) | Int(_) | Error | Eof => "",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

fn keyword(word: &str) -> Option<TokenKind> {
    use TokenKind::*;
    Some(match word {
        "fn" => Fn,
        "struct" => Struct,
        "const" => Const,
        "type" => Type,
        "use" => Use,
        "pub" => Pub,
        "let" => Let,
        "mut" => Mut,
        "if" => If,
        "else" => Else,
        "while" => While,
        "return" => Return,
        "true" => True,
        "false" => False,
        "as" => As,
        "crate" => Crate,
        "self" => SelfKw,
        "super" => Super,
        _ => return None,
    })
}

/// Splits `text` into tokens. Never fails; problems become diagnostics.
pub fn lex(file: FileId, text: &str) -> (Vec<Token>, Vec<Diag>) {
    let bytes = text.as_bytes();
    // Dense code has a token per three bytes or so (the generated programs: 3.2), so
    // this rarely grows; growing from empty copied the list a dozen times per file. The
    // list lives only while its file is parsed; the cap bounds what a huge file of
    // comments reserves for nothing.
    let mut tokens = Vec::with_capacity((text.len() / 3).min(1 << 20) + 16);
    let mut diags = Vec::new();
    // One allocation per distinct name in the file, shared by its occurrences (and by
    // the syntax tree's identifiers, which clone it).
    let mut names: HashSet<Arc<str>> = HashSet::default();
    // A byte order mark may open a file (`SourceFile` drops it; this covers raw text).
    let mut i = if text.starts_with('\u{feff}') { 3 } else { 0 };
    while i < bytes.len() {
        let start = i;
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'/') {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = skip_block_comment(bytes, i);
            if i > bytes.len() {
                i = bytes.len();
                diags.push(
                    Diag::error("E0758", "unterminated block comment")
                        .at(Span::new(file, start, start + 2), "comment starts here"),
                );
            }
            continue;
        }
        let kind = if c.is_ascii_alphabetic() || c == b'_' {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &text[start..i];
            keyword(word).unwrap_or_else(|| {
                let name = match names.get(word) {
                    Some(name) => Arc::clone(name),
                    None => {
                        let name: Arc<str> = Arc::from(word);
                        names.insert(Arc::clone(&name));
                        name
                    }
                };
                TokenKind::Ident(name)
            })
        } else if c.is_ascii_digit() {
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            // Most literals have no `_`: read them in place rather than copying each.
            let written = &text[start..i];
            let digits: std::borrow::Cow<'_, str> = if written.contains('_') {
                written
                    .chars()
                    .filter(|&c| c != '_')
                    .collect::<String>()
                    .into()
            } else {
                written.into()
            };
            match digits.parse::<i64>() {
                Ok(n) => TokenKind::Int(n),
                Err(_) => {
                    let span = Span::new(file, start, i);
                    let msg = if digits.bytes().all(|b| b.is_ascii_digit()) {
                        Diag::plain("integer literal is too large")
                            .at(span, "does not fit in `i64`")
                            .note(format!("the largest `i64` is `{}`", i64::MAX))
                    } else {
                        Diag::plain("invalid integer literal").at(span, "not a decimal number")
                    };
                    diags.push(msg);
                    TokenKind::Int(0)
                }
            }
        } else {
            let (kind, len) = punct(bytes, i);
            match kind {
                Some(k) => {
                    i += len;
                    k
                }
                None => {
                    let ch = text[i..].chars().next().unwrap_or('\u{fffd}');
                    i += ch.len_utf8();
                    diags.push(
                        Diag::plain(format!("unknown start of token: {}", ch.escape_debug()))
                            .at(Span::new(file, start, i), "not valid here"),
                    );
                    TokenKind::Error
                }
            }
        };
        tokens.push(Token {
            kind,
            span: Span::new(file, start, i),
        });
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        span: Span::new(file, bytes.len(), bytes.len()),
    });
    (tokens, diags)
}

/// Returns the offset after a (nested) block comment starting at `i`, or a value past
/// the end when it is unterminated.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len() + 1
}

fn punct(bytes: &[u8], i: usize) -> (Option<TokenKind>, usize) {
    use TokenKind::*;
    let next = bytes.get(i + 1).copied();
    let two = match (bytes[i], next) {
        (b':', Some(b':')) => Some(ColonColon),
        (b'-', Some(b'>')) => Some(Arrow),
        (b'=', Some(b'=')) => Some(EqEq),
        (b'!', Some(b'=')) => Some(NotEq),
        (b'<', Some(b'=')) => Some(Le),
        (b'>', Some(b'=')) => Some(Ge),
        (b'&', Some(b'&')) => Some(AndAnd),
        (b'|', Some(b'|')) => Some(OrOr),
        _ => None,
    };
    if two.is_some() {
        return (two, 2);
    }
    let one = match bytes[i] {
        b'(' => LParen,
        b')' => RParen,
        b'{' => LBrace,
        b'}' => RBrace,
        b',' => Comma,
        b';' => Semi,
        b':' => Colon,
        b'.' => Dot,
        b'*' => Star,
        b'+' => Plus,
        b'-' => Minus,
        b'/' => Slash,
        b'%' => Percent,
        b'=' => Eq,
        b'<' => Lt,
        b'>' => Gt,
        b'!' => Bang,
        _ => return (None, 0),
    };
    (Some(one), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        lex(FileId(0), text).0.into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn lexes_items_and_operators() {
        use TokenKind::*;
        assert_eq!(
            kinds("pub fn f(x: i64) -> i64 { x <= 1_000 && !y::z }"),
            vec![
                Pub,
                Fn,
                Ident("f".into()),
                LParen,
                Ident("x".into()),
                Colon,
                Ident("i64".into()),
                RParen,
                Arrow,
                Ident("i64".into()),
                LBrace,
                Ident("x".into()),
                Le,
                Int(1000),
                AndAnd,
                Bang,
                Ident("y".into()),
                ColonColon,
                Ident("z".into()),
                RBrace,
                Eof
            ]
        );
    }

    #[test]
    fn comments_nest_and_unterminated_ones_are_reported() {
        assert_eq!(
            kinds("/* a /* b */ c */ 1 // x"),
            vec![TokenKind::Int(1), TokenKind::Eof]
        );
        let (toks, diags) = lex(FileId(0), "1 /* /* */");
        assert_eq!(toks.len(), 2);
        assert_eq!(diags.len(), 1);
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_and_a_later_one_is_not() {
        assert_eq!(kinds("\u{feff}fn"), vec![TokenKind::Fn, TokenKind::Eof]);
        let (_, diags) = lex(FileId(0), "fn \u{feff}");
        assert_eq!(diags.len(), 1);
    }

    #[test]
    fn bad_characters_and_huge_numbers_are_diagnosed_once_each() {
        let (toks, diags) = lex(FileId(0), "a $ 99999999999999999999 é");
        assert_eq!(diags.len(), 3);
        assert_eq!(toks.last().map(|t| &t.kind), Some(&TokenKind::Eof));
    }
}
