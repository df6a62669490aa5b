//! Checks PromQL string literals for escapes that make invalid UTF-8.
//!
//! PromQL strings use Go's escapes, where `\xff` or `\377` is one raw byte.
//! Prometheus keeps such bytes, so `"\xff"` is not valid UTF-8 and is refused
//! wherever a label name is expected. The parser library we use decodes the
//! same escape into the character U+00FF instead, which would quietly turn
//! an invalid name into a valid one. So before parsing, every string literal
//! is decoded byte-wise the way Go does and one that is not UTF-8 is an error
//! naming its column: no label name or value can ever equal it.

/// Returns an error naming the first string literal whose Go-style escapes
/// decode to bytes that are not valid UTF-8.
pub fn check_literals(expr: &str) -> Result<(), super::ParseError> {
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => {
                // A comment runs to the end of the line.
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'`' => {
                // Raw strings have no escapes.
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i += 1;
            }
            q @ (b'"' | b'\'') => {
                let start = i;
                let (end, bytes) = decode(b, i + 1, q);
                if std::str::from_utf8(&bytes).is_err() {
                    let col = expr[..start].chars().count() + 1;
                    let literal = expr[start..end.min(b.len())].to_string();
                    return Err(super::ParseError::InvalidUtf8 { col, literal });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Decodes a quoted literal from `i` (just after the opening quote `q`) to
/// its closing quote; returns the index after it and the decoded bytes.
/// Malformed escapes are left to the parser, which reports them.
fn decode(b: &[u8], mut i: usize, q: u8) -> (usize, Vec<u8>) {
    let mut out = Vec::new();
    while i < b.len() && b[i] != q {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let esc = b[i + 1];
        match esc {
            b'x' => match hex_byte(b.get(i + 2..i + 4)) {
                Some(v) => {
                    out.push(v);
                    i += 4;
                }
                None => i += 2,
            },
            b'0'..=b'7' => match octal_byte(b.get(i + 1..i + 4)) {
                Some(v) => {
                    out.push(v);
                    i += 4;
                }
                None => i += 2,
            },
            // Other escapes (\n, \", \u00e9, ...) decode to valid UTF-8;
            // only their length matters here.
            _ => {
                out.push(b'?');
                i += 2;
            }
        }
    }
    (i + 1, out)
}

fn hex_byte(d: Option<&[u8]>) -> Option<u8> {
    let d = std::str::from_utf8(d?).ok()?;
    u8::from_str_radix(d, 16).ok()
}

fn octal_byte(d: Option<&[u8]>) -> Option<u8> {
    let d = std::str::from_utf8(d?).ok()?;
    u8::from_str_radix(d, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::check_literals;

    #[test]
    fn invalid_byte_escapes_are_refused_with_their_column() {
        let e = check_literals(r#"label_replace(m, "\xff", "", "src", "(.*)")"#).unwrap_err().to_string();
        assert!(e.starts_with("1:18: string \"\\xff\""), "{e}");
        assert!(check_literals(r#"count_values('a\305z', m)"#).is_err());
    }

    #[test]
    fn valid_strings_pass() {
        for ok in [
            r#"m{a="\xc3\xa9"}"#, // é as two bytes: valid UTF-8
            r#"m{a="é", b="\u00e9", c="\n\"\\"}"#,
            r#"m{a=`\xff`}"#, // raw string: no escapes
            "m # \"\\xff\" in a comment\n",
            r#"label_replace(m, "dst", "$1", "src", "(.*)")"#,
        ] {
            assert_eq!(check_literals(ok), Ok(()), "{ok}");
        }
    }
}
