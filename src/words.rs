//! How plbulk says counts and names in English, in one place: "1 row", "3 rows", "an Address
//! Line 1 column". Every message a partner reads goes through these, so a count never reads
//! "1 writes" and an article never reads "a Address".

/// `n` and the noun, plural unless `n` is 1: `count(1, "row")` is "1 row", `count(3, "entry")`
/// "3 entries".
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {}", plural(noun))
    }
}

/// The plural of a regular English noun, which is all plbulk counts.
pub fn plural(noun: &str) -> String {
    let consonant_y = noun.len() > 1
        && noun.ends_with('y')
        && !noun[..noun.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with(['s', 'x']) || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

/// "a" or "an" before `word`, by the sound plbulk's column names start with: an Address Line 1,
/// an Email, a User Type.
pub fn article(word: &str) -> &'static str {
    let w = word.trim_start().to_ascii_lowercase();
    // A "you" sound takes "a": a User Email, a UK number, a unique Ref.
    if ["use", "usu", "uni", "uk"].iter().any(|p| w.starts_with(p)) {
        return "a";
    }
    match w.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "write"), "1 write");
        assert_eq!(count(0, "write"), "0 writes");
        assert_eq!(count(2, "entry"), "2 entries");
        assert_eq!(count(2, "day"), "2 days");
        assert_eq!(count(3, "match"), "3 matches");
        assert_eq!(count(4, "address"), "4 addresses");
    }

    #[test]
    fn articles_follow_the_sound() {
        assert_eq!(article("Address Line 1"), "an");
        assert_eq!(article("Email"), "an");
        assert_eq!(article("Postcode"), "a");
        assert_eq!(article("User Email"), "a");
    }
}
