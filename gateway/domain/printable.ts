/**
 * What the audit log never stores as it came: characters that do not print or that change how
 * the text around them reads. Controls (Cc: ESC, TAB, CR/LF, NUL), format characters (Cf: the
 * bidi overrides and isolates such as U+202E, zero-width spaces and joiners, the BOM, the soft
 * hyphen), lone surrogates (Cs), private-use (Co) and unassigned (Cn) code points, and the line
 * and paragraph separators (Zl, Zp). An entry holding one could read as something it is not
 * (`\u202E` turns the rest of a line around) or break a terminal, a log viewer or a CSV file.
 */
export const UNPRINTABLE_CLASS = '\\p{Cc}\\p{Cf}\\p{Cs}\\p{Co}\\p{Cn}\\p{Zl}\\p{Zp}';

const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASS}]`, 'u');

/** True when `text` holds none of the characters above (lone surrogates included). */
export const isPrintable = (text: string): boolean => !UNPRINTABLE.test(text);

/**
 * `text` with every character above written as `\u{hex}` and every backslash doubled, so the
 * result prints as one line and reads back unambiguously; cut to at most `maxLength` characters,
 * never inside an escape.
 */
export function escapeUnprintable(text: string, maxLength = Infinity): string {
  let out = '';
  for (const ch of text) {
    const piece = ch === '\\' ? '\\\\' : UNPRINTABLE.test(ch) ? `\\u{${ch.codePointAt(0)!.toString(16)}}` : ch;
    if (out.length + piece.length > maxLength) break;
    out += piece;
  }
  return out;
}

const UNPRINTABLE_ALL = new RegExp(`[${UNPRINTABLE_CLASS}]`, 'gu');

/**
 * JSON text with every character above written as a `\uXXXX` escape: the same JSON value, parsed,
 * but text that prints as one line. For JSON held in a CSV cell or a log line.
 */
export const jsonPrintable = (json: string): string =>
  json.replace(UNPRINTABLE_ALL, (ch) => Array.from({ length: ch.length }, (_, i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''));
