//! How a word sounds, written in plain Latin letters: brands typed in Cyrillic
//! ("касперский", "дарк соулс", "нетфликс", "фотошоп") meet the Latin names shops write
//! ("Kaspersky", "Dark Souls", "Netflix", "Photoshop"). Cyrillic is transliterated, then
//! both scripts are folded the same way (ph→f, x→ks, w→v, c→k/s, y→i, doubled letters
//! once); the keyword index matches these keys one edit apart.

fn translit(c: char) -> Option<&'static str> {
    Some(match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'ж' => "zh",
        'з' => "z",
        'и' | 'й' | 'ы' => "i",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' => "u",
        'ф' => "f",
        'х' => "h",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "sch",
        'ъ' | 'ь' => "",
        'ю' => "iu",
        'я' => "ia",
        _ => return None,
    })
}

fn fold_latin(c: char) -> Option<char> {
    Some(match c {
        'a'..='z' | '0'..='9' => c,
        'à' | 'á' | 'â' | 'ä' | 'å' | 'ã' => 'a',
        'è' | 'é' | 'ê' | 'ë' => 'e',
        'ì' | 'í' | 'î' | 'ï' => 'i',
        'ò' | 'ó' | 'ô' | 'ö' | 'õ' | 'ø' => 'o',
        'ù' | 'ú' | 'û' | 'ü' => 'u',
        'ñ' => 'n',
        'ç' => 'c',
        _ => return None,
    })
}

/// Whether a word has Cyrillic letters.
pub fn is_cyrillic(word: &str) -> bool {
    word.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c))
}

/// The sound key of one word, or `None` for words too short to compare or with no letters.
pub fn key(word: &str) -> Option<String> {
    let lower = word.to_lowercase();
    // "дж" is one sound (j); so are "кс" (x) and "ай"/"ей" after folding below.
    let lower = lower.replace("дж", "j");
    let mut latin = String::with_capacity(lower.len() + 4);
    for c in lower.chars() {
        if let Some(t) = translit(c) {
            latin.push_str(t);
        } else if let Some(f) = fold_latin(c) {
            latin.push(f);
        }
    }
    let mut s = latin;
    for (from, to) in [
        ("ph", "f"),
        ("ck", "k"),
        ("x", "ks"),
        ("w", "v"),
        ("q", "k"),
        ("you", "iu"),
        ("ou", "u"),
        ("ee", "i"),
        ("ea", "i"),
        ("ch", "\u{1}"),
        ("ce", "se"),
        ("ci", "si"),
        ("cy", "si"),
        ("c", "k"),
        ("\u{1}", "ch"),
        ("y", "i"),
        ("ai", "i"),
        ("ei", "i"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    if out.chars().filter(|c| c.is_ascii_alphabetic()).count() < 3 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::key;

    fn same(a: &str, b: &str) -> bool {
        let (a, b) = (key(a).unwrap(), key(b).unwrap());
        strsim(&a, &b) <= 1
    }

    /// Levenshtein distance, for the test only (the index uses its own automaton).
    fn strsim(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut cur = vec![i + 1];
            for (j, cb) in b.iter().enumerate() {
                cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
            }
            prev = cur;
        }
        prev[b.len()]
    }

    #[test]
    fn brands_typed_in_cyrillic_meet_their_latin_names() {
        for (ru, en) in [
            ("касперский", "Kaspersky"),
            ("дарк", "Dark"),
            ("соулс", "Souls"),
            ("нетфликс", "Netflix"),
            ("фотошоп", "Photoshop"),
            ("спотифай", "Spotify"),
            ("ютуб", "YouTube"),
            ("майкрософт", "Microsoft"),
            ("джетбрейнс", "JetBrains"),
            ("вар", "War"),
            ("рагнарек", "Ragnarök"),
            ("виндовс", "Windows"),
            ("стим", "Steam"),
            ("майнкрафт", "Minecraft"),
            ("офис", "Office"),
            ("экспресс", "Express"),
            ("сайбер", "Cyber"),
        ] {
            assert!(same(ru, en), "{ru} {:?} vs {en} {:?}", key(ru), key(en));
        }
    }

    #[test]
    fn different_words_stay_apart_and_short_ones_have_no_key() {
        assert!(!same("касперский", "Acronis"));
        assert!(!same("нетфликс", "Netgear"));
        assert_eq!(key("на"), None);
        assert_eq!(key("3"), None);
    }
}
