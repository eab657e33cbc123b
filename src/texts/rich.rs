//! Message bodies as styled spans. Texts are built from spans and never contain markup, so
//! no title, name or item can break a message: each channel's renderer escapes — Telegram
//! HTML in [`Rich::html`], plain text (the web shop, the outbox, the terminal) in
//! [`Rich::plain`].

use serde::Serialize;

/// One run of text with one style.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "style", content = "text", rename_all = "snake_case")]
pub enum Span {
    Text(String),
    Bold(String),
    /// Copied with one tap in Telegram (keys, logins).
    Code(String),
    /// A crossed-out old price.
    Strike(String),
}

/// A message body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Rich(pub Vec<Span>);

impl Rich {
    pub fn new() -> Rich {
        Rich(Vec::new())
    }

    /// Appends plain text.
    pub fn t(mut self, s: impl AsRef<str>) -> Rich {
        self.push(Span::Text(s.as_ref().to_string()));
        self
    }

    pub fn b(mut self, s: impl AsRef<str>) -> Rich {
        self.push(Span::Bold(s.as_ref().to_string()));
        self
    }

    pub fn code(mut self, s: impl AsRef<str>) -> Rich {
        self.push(Span::Code(s.as_ref().to_string()));
        self
    }

    pub fn strike(mut self, s: impl AsRef<str>) -> Rich {
        self.push(Span::Strike(s.as_ref().to_string()));
        self
    }

    /// Appends another body.
    pub fn and(mut self, other: Rich) -> Rich {
        for s in other.0 {
            self.push(s);
        }
        self
    }

    /// Appends another body after a blank line (nothing when either is empty).
    pub fn para(self, other: Rich) -> Rich {
        if other.is_empty() {
            return self;
        }
        if self.is_empty() {
            return other;
        }
        self.t("\n\n").and(other)
    }

    /// Appends another body on a new line.
    pub fn line(self, other: Rich) -> Rich {
        if self.is_empty() {
            return other;
        }
        self.t("\n").and(other)
    }

    pub fn push(&mut self, s: Span) {
        // Adjacent plain runs merge, so tests and renderers see whole sentences.
        if let (Some(Span::Text(last)), Span::Text(new)) = (self.0.last_mut(), &s) {
            last.push_str(new);
            return;
        }
        self.0.push(s);
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|s| match s {
            Span::Text(t) | Span::Bold(t) | Span::Code(t) | Span::Strike(t) => t.is_empty(),
        })
    }

    /// The text without styles.
    pub fn plain(&self) -> String {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Span::Text(t) | Span::Bold(t) | Span::Code(t) | Span::Strike(t) => out.push_str(t),
            }
        }
        out
    }

    /// Telegram HTML, every span escaped.
    pub fn html(&self) -> String {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Span::Text(t) => out.push_str(&esc(t)),
                Span::Bold(t) => out.push_str(&format!("<b>{}</b>", esc(t))),
                Span::Code(t) => out.push_str(&format!("<code>{}</code>", esc(t))),
                Span::Strike(t) => out.push_str(&format!("<s>{}</s>", esc(t))),
            }
        }
        out
    }

    /// Characters a reader sees.
    pub fn chars(&self) -> usize {
        self.plain().chars().count()
    }
}

impl From<String> for Rich {
    fn from(s: String) -> Rich {
        Rich::new().t(s)
    }
}

impl From<&str> for Rich {
    fn from(s: &str) -> Rich {
        Rich::new().t(s)
    }
}

/// Escapes text for Telegram HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_span_is_escaped_and_plain_text_has_no_markup() {
        let r = Rich::new().b("<Key & Co>").t(" costs ").strike("1 <b>").code("A<B>");
        assert_eq!(r.html(), "<b>&lt;Key &amp; Co&gt;</b> costs <s>1 &lt;b&gt;</s><code>A&lt;B&gt;</code>");
        assert_eq!(r.plain(), "<Key & Co> costs 1 <b>A<B>");
    }

    #[test]
    fn paragraphs_skip_empty_parts() {
        assert_eq!(Rich::from("a").para(Rich::new()).plain(), "a");
        assert_eq!(Rich::new().para("b".into()).plain(), "b");
        assert_eq!(Rich::from("a").para("b".into()).plain(), "a\n\nb");
    }
}
