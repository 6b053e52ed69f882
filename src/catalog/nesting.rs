//! How deeply an HCL parser must recurse to read a text, measured by an iterative scan before
//! anything parses it. hcl-rs's parser recurses once per nested bracket, block, function call,
//! interpolation, template directive and operator (a chain `a + b + c` nests to the right) and
//! has no limit of its own: a kilobyte of `[` overflows the stack. The scan follows the lexical
//! modes the parser has — code, quoted strings, heredocs, comments, `${…}`/`%{…}` inside strings —
//! so that brackets in strings and comments do not count, and wherever it could disagree with
//! the parser about a mode it errs towards code, where it counts more (a heredoc ends at the
//! first line that could end it). The depth it reports is an upper bound of the parser's.

/// One open construct.
enum Frame {
    /// Code closed by `close` (`)`, `]`, `}`; 0 for the file itself); `ops` operators since the
    /// last `,` or `=` at this level.
    Code { close: u8, ops: usize },
    /// A quoted string with `directives` `%{if}`/`%{for}` open.
    Quoted { directives: usize },
    /// A heredoc's text up to its delimiter (`text[start..end]`) with `directives` open.
    Heredoc { start: usize, end: usize, directives: usize },
}

impl Frame {
    fn weight(&self) -> usize {
        1 + match self {
            Frame::Code { ops, .. } => *ops,
            Frame::Quoted { directives } | Frame::Heredoc { directives, .. } => *directives,
        }
    }
}

/// The 1-based line where `text` first nests deeper than `limit`, or `None` when it never does.
pub fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let line = |at: usize| bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1;
    let mut frames = vec![Frame::Code { close: 0, ops: 0 }];
    let mut depth = 1;
    // In a heredoc: whether the scan is at the start of one of its lines (where it may end).
    let mut line_start = false;
    let mut i = 0;
    while i < bytes.len() {
        if depth > limit {
            return Some(line(i));
        }
        let b = bytes[i];
        let next = bytes.get(i + 1).copied().unwrap_or(0);
        let code = matches!(frames.last(), Some(Frame::Code { .. }));
        if code && b == b'<' && next == b'<' {
            if let Some((start, end, after)) = heredoc_start(bytes, i) {
                frames.push(Frame::Heredoc { start, end, directives: 0 });
                depth += 1;
                line_start = true;
                i = after;
                continue;
            }
        }
        if let (true, Some(Frame::Heredoc { start, end, .. })) = (line_start, frames.last()) {
            line_start = false;
            let delimiter = &bytes[*start..*end];
            let text_start = i + bytes[i..].iter().take_while(|&&c| c == b' ' || c == b'\t').count();
            if bytes[text_start..].starts_with(delimiter) {
                depth -= frames.pop().expect("a heredoc is open").weight();
                i = text_start + delimiter.len();
                continue;
            }
        }
        let quoted = matches!(frames.last(), Some(Frame::Quoted { .. }));
        match frames.last_mut().expect("the file's frame is never popped") {
            Frame::Code { close, ops } => match b {
                b'#' => i = find(bytes, i, b"\n"),
                b'/' if next == b'/' => i = find(bytes, i, b"\n"),
                b'/' if next == b'*' => i = find(bytes, i + 2, b"*/") + 2,
                b'"' => {
                    frames.push(Frame::Quoted { directives: 0 });
                    depth += 1;
                    i += 1;
                }
                b'(' | b'[' | b'{' => {
                    frames.push(Frame::Code { close: if b == b'(' { b')' } else { b + 2 }, ops: 0 });
                    depth += 1;
                    i += 1;
                }
                b')' | b']' | b'}' => {
                    // A mismatched bracket is a syntax error where the parser stops; popping
                    // whatever is open keeps the count an upper bound until there.
                    if *close != 0 {
                        depth -= 1 + *ops;
                        frames.pop();
                    }
                    i += 1;
                }
                b',' => {
                    depth -= *ops;
                    *ops = 0;
                    i += 1;
                }
                b'=' if next == b'>' => i += 2,
                b'=' if next != b'=' => {
                    depth -= *ops;
                    *ops = 0;
                    i += 1;
                }
                b'=' | b'!' | b'<' | b'>' | b'&' | b'|' | b'+' | b'-' | b'*' | b'/' | b'%' | b'?' => {
                    *ops += 1;
                    depth += 1;
                    let pair = matches!((b, next), (b'=' | b'!' | b'<' | b'>', b'=') | (b'&', b'&') | (b'|', b'|'));
                    i += if pair { 2 } else { 1 };
                }
                // Identifiers may hold `-`, which is then no operator.
                b if is_ident_start(b) => i = ident_end(bytes, i),
                _ => i += 1,
            },
            Frame::Quoted { directives } | Frame::Heredoc { directives, .. } => {
                match b {
                    b'\\' if quoted => i += 2,
                    b'"' if quoted => {
                        depth -= 1 + *directives;
                        frames.pop();
                        i += 1;
                    }
                    b'\n' => {
                        line_start = !quoted;
                        i += 1;
                    }
                    // `$${` and `%%{` are escapes, not interpolations.
                    b'$' | b'%' if next == b && bytes.get(i + 2) == Some(&b'{') => i += 3,
                    b'$' | b'%' if next == b'{' => {
                        if b == b'%' {
                            // Directives nest until their `endif`/`endfor`; anything else
                            // unrecognised counts as opening one.
                            match directive_keyword(bytes, i + 2) {
                                b"endif" | b"endfor" => {
                                    if *directives > 0 {
                                        *directives -= 1;
                                        depth -= 1;
                                    }
                                }
                                b"else" => {}
                                _ => {
                                    *directives += 1;
                                    depth += 1;
                                }
                            }
                        }
                        frames.push(Frame::Code { close: b'}', ops: 0 });
                        depth += 1;
                        i += 2;
                    }
                    _ => i += 1,
                }
            }
        }
    }
    (depth > limit).then(|| line(bytes.len()))
}

/// The index of the first `needle` at or after `from`, or the end of `bytes`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> usize {
    let from = from.min(bytes.len());
    bytes[from..].windows(needle.len()).position(|w| w == needle).map_or(bytes.len(), |p| from + p)
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

/// The end of the identifier starting at `at` (identifiers may hold `-` and digits).
fn ident_end(bytes: &[u8], at: usize) -> usize {
    at + 1 + bytes[at + 1..].iter().take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c >= 0x80).count()
}

/// At `<<`: when a heredoc starts here as the parser reads one (`<<` or `<<-`, an identifier, a
/// line ending), its delimiter's range and where its text begins.
fn heredoc_start(bytes: &[u8], at: usize) -> Option<(usize, usize, usize)> {
    let start = if bytes.get(at + 2) == Some(&b'-') { at + 3 } else { at + 2 };
    if !bytes.get(start).is_some_and(|&c| is_ident_start(c)) {
        return None;
    }
    let end = ident_end(bytes, start);
    match (bytes.get(end), bytes.get(end + 1)) {
        (Some(b'\n'), _) => Some((start, end, end + 1)),
        (Some(b'\r'), Some(b'\n')) => Some((start, end, end + 2)),
        _ => None,
    }
}

/// The word opening a `%{` directive whose body starts at `from` (after `~` and spaces).
fn directive_keyword(bytes: &[u8], from: usize) -> &[u8] {
    let mut i = from;
    if bytes.get(i) == Some(&b'~') {
        i += 1;
    }
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
        i += 1;
    }
    &bytes[start..i]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The depth the scan measures: the smallest limit it accepts.
    fn depth(text: &str) -> usize {
        (0..1000).find(|&limit| too_deep(text, limit).is_none()).expect("under 1000")
    }

    #[test]
    fn brackets_blocks_and_calls_count() {
        assert_eq!(depth(""), 1);
        assert_eq!(depth("a = 1\nb = \"x\"\n"), 2);
        assert_eq!(depth("locals { x = [[1]] }"), 4);
        assert_eq!(depth("x = f(g(h(1)))"), 4);
        assert_eq!(depth("resource \"a\" \"b\" {\n  dynamic \"c\" {\n    content { d = {e = 1} }\n  }\n}\n"), 5);
        assert_eq!(too_deep(&format!("x = {}", "[".repeat(5000)), 100), Some(1));
        assert_eq!(too_deep(&format!("\n\nx = {}1{}", "(".repeat(99), ")".repeat(99)), 100), None);
        assert_eq!(too_deep(&format!("\n\nx = {}1{}", "(".repeat(100), ")".repeat(100)), 100), Some(3));
    }

    #[test]
    fn operator_chains_count_until_a_separator() {
        assert_eq!(depth("x = a + b + c"), 3);
        assert_eq!(depth("x = a == b && c != d || !e"), 6);
        assert_eq!(depth("x = a ? b : c ? d : e"), 3);
        assert_eq!(depth("x = [a + b, c + d]\ny = a - b"), 3);
        // Dashes in identifiers, `=>` in for expressions and comparisons are no separators.
        assert_eq!(depth("x = my-long-name-here"), 1);
        assert_eq!(depth("x = {for k, v in m : k => v}"), 2);
        assert!(too_deep(&format!("x = 1{}", " + 1".repeat(5000)), 100).is_some());
        assert!(too_deep(&format!("x = {}true", "!".repeat(5000)), 100).is_some());
        assert!(too_deep(&format!("x = {}1", "-".repeat(5000)), 100).is_some());
        assert!(too_deep(&format!("x = {}c", "a ? b : ".repeat(5000)), 100).is_some());
    }

    #[test]
    fn strings_comments_and_heredocs_hide_brackets() {
        let literal = "[".repeat(500);
        assert_eq!(depth(&format!("x = \"{literal}\" # {literal}\n// {literal}\n/* {literal} */ y = 1")), 2);
        assert_eq!(depth(&format!("x = \"\\\"{literal}\"")), 2);
        assert_eq!(depth(&format!("x = <<EOF\n{literal}\n  EOF\ny = 1\n")), 2);
        assert_eq!(depth(&format!("x = <<-EOT\n  {literal}\n  EOT\n")), 2);
        assert_eq!(depth(&format!("x = \"$${{{literal}\"")), 2);
    }

    #[test]
    fn interpolations_and_directives_nest() {
        assert_eq!(depth("x = \"${a}\""), 3);
        assert_eq!(depth("x = \"${\"${a}\"}\""), 5);
        assert_eq!(depth("x = \"%{if a}${b}%{endif}\""), 4);
        assert_eq!(depth("x = \"%{if a}%{if b}c%{endif}%{endif}\""), 5);
        assert_eq!(depth("x = \"%{for a in b}c%{endfor}%{for a in b}c%{endfor}\""), 4);
        assert_eq!(depth("x = <<EOF\n%{ if a ~}\n${b}\n%{~ endif }\nEOF\n"), 4);
        assert!(too_deep(&format!("x = {}", "\"${".repeat(3000)), 100).is_some());
        assert!(too_deep(&format!("x = \"{}\"", "%{if a}".repeat(3000)), 100).is_some());
    }

    #[test]
    fn a_heredoc_ends_at_the_first_line_that_may_end_it() {
        // The parser ends `EOF` at a line starting with it, whatever follows: so does the scan.
        let deep = "[".repeat(200);
        assert!(too_deep(&format!("x = <<EOF\nEOF{deep}\n"), 100).is_some());
        assert!(too_deep(&format!("x = <<EOF\n\t EOF{deep}\n"), 100).is_some());
        assert!(too_deep(&format!("x = <<EOF\r\nEOF{deep}\n"), 100).is_some());
        // Not a heredoc (no line ending after the delimiter): code.
        assert!(too_deep(&format!("x = <<EOF {deep}\n"), 100).is_some());
        // Inside an interpolation, a line is code, not the heredoc's end.
        assert!(too_deep(&format!("x = <<EOF\n${{a\nEOF{deep}}}\nEOF\n"), 100).is_some());
    }
}
