//! Telegram text helpers: HTML escaping and splitting a long message into parts that each
//! fit Telegram's limit without breaking a tag or an entity (open tags are closed at the
//! end of a part and opened again at the start of the next).

/// Telegram's longest message text.
pub const MAX_MESSAGE: usize = 4096;

/// Escapes `<`, `>` and `&` for Telegram's HTML parse mode (the texts' escaper: one place).
pub use crate::texts::esc as escape;

/// Splits `text` into parts of at most `max` characters (counted on the raw text, tags
/// included, so the visible length is never above it), preferring line breaks.
pub fn split(text: &str, html: bool, max: usize) -> Vec<String> {
    let max = max.max(64);
    if text.chars().count() <= max {
        return vec![text.to_string()];
    }
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut cur_len = 0usize;
    // Open tags at the current position, as written (e.g. `<a href="…">`), with their names.
    let mut open: Vec<(String, String)> = Vec::new();
    let closing = |open: &[(String, String)]| -> String {
        open.iter().rev().map(|(name, _)| format!("</{name}>")).collect()
    };
    let reserve = |open: &[(String, String)]| -> usize {
        if html { open.iter().map(|(n, t)| n.len() + 3 + t.chars().count()).sum::<usize>() + 24 } else { 0 }
    };
    for token in tokens(text, html) {
        let tlen = token.text.chars().count();
        // Cut before this token when it does not fit (keeping room to close open tags).
        if cur_len > 0 && cur_len + tlen + reserve(&open) > max {
            let trimmed_close = closing(&open);
            cur.push_str(&trimmed_close);
            parts.push(std::mem::take(&mut cur));
            cur_len = 0;
            for (_, t) in &open {
                cur.push_str(t);
                cur_len += t.chars().count();
            }
        }
        if token.is_tag {
            apply_tag(&mut open, &token.text);
        }
        if !token.is_tag && cur_len + tlen + reserve(&open) > max {
            // One token longer than a whole part: cut it at character boundaries.
            let mut rest: Vec<char> = token.text.chars().collect();
            while !rest.is_empty() {
                let room = max.saturating_sub(cur_len + reserve(&open)).max(1);
                let take = room.min(rest.len());
                let chunk: String = rest.drain(..take).collect();
                cur.push_str(&chunk);
                cur_len += take;
                if !rest.is_empty() {
                    cur.push_str(&closing(&open));
                    parts.push(std::mem::take(&mut cur));
                    cur_len = 0;
                    for (_, t) in &open {
                        cur.push_str(t);
                        cur_len += t.chars().count();
                    }
                }
            }
            continue;
        }
        cur.push_str(&token.text);
        cur_len += tlen;
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
}

struct Token {
    text: String,
    is_tag: bool,
}

/// Lines (with their `\n`), and in HTML tags and entities as unbreakable tokens.
fn tokens(text: &str, html: bool) -> Vec<Token> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |w: &mut String, out: &mut Vec<Token>| {
        if !w.is_empty() {
            out.push(Token { text: std::mem::take(w), is_tag: false });
        }
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if html && (c == '<' || c == '&') {
            let end = if c == '<' { '>' } else { ';' };
            let mut t = String::from(c);
            for d in chars.by_ref() {
                t.push(d);
                if d == end {
                    break;
                }
            }
            if c == '<' {
                flush(&mut word, &mut out);
                out.push(Token { text: t, is_tag: true });
            } else {
                // An entity is one unbreakable piece of text.
                flush(&mut word, &mut out);
                out.push(Token { text: t, is_tag: false });
            }
            continue;
        }
        word.push(c);
        if c == '\n' || c == ' ' {
            flush(&mut word, &mut out);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn apply_tag(open: &mut Vec<(String, String)>, tag: &str) {
    let inner = tag.trim_start_matches('<').trim_end_matches('>');
    if let Some(name) = inner.strip_prefix('/') {
        let name = name.trim().to_ascii_lowercase();
        if let Some(pos) = open.iter().rposition(|(n, _)| *n == name) {
            open.remove(pos);
        }
    } else {
        let name: String = inner.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        if !name.is_empty() && !inner.ends_with('/') {
            open.push((name.to_ascii_lowercase(), tag.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_part() {
        assert_eq!(split("hello", true, 4096), vec!["hello".to_string()]);
    }

    #[test]
    fn long_plain_text_is_split_on_lines_within_the_limit() {
        let text: String = (0..500).map(|i| format!("line number {i}\n")).collect();
        let parts = split(&text, false, 1000);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= 1000));
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn html_parts_keep_tags_balanced_and_entities_whole() {
        let body: String = (0..300).map(|i| format!("key-{i} &amp; more\n")).collect();
        let text = format!("<b>Head</b>\n<code>{body}</code>\nend");
        let parts = split(&text, true, 500);
        assert!(parts.len() > 3);
        for p in &parts {
            assert!(p.chars().count() <= 500, "{}", p.len());
            assert_eq!(p.matches("<code>").count(), p.matches("</code>").count(), "{p}");
            assert!(!p.ends_with("&amp"), "{p}");
        }
        let visible: String = parts.concat().replace("<code>", "").replace("</code>", "");
        assert!(visible.contains("key-299 &amp; more"));
    }

    #[test]
    fn one_huge_word_is_cut() {
        let text = "x".repeat(10_000);
        let parts = split(&text, false, 4096);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }
}
