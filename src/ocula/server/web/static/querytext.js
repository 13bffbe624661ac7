// Query-language text made in the page: a metadata field with a value, and a condition
// AND-ed onto the query in the query bar. The server parses whatever this writes, so
// it follows docs/query-language.md: strings quoted and escaped, numbers, booleans and
// null bare, a key that is not a plain name quoted (metadata."odd key").
import { quoted } from "./api.js";

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const KEYWORDS = new Set(["and", "or", "not", "in", "order", "by", "asc", "desc", "limit",
                          "true", "false", "null"]);

/** The query-language name of a top-level metadata field. */
export function metadataField(key) {
  const plain = PLAIN_KEY.test(key) && !KEYWORDS.has(key.toLowerCase());
  return `metadata.${plain ? key : quoted(key)}`;
}

/** A value as a query-language literal. */
export function literal(value) {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return String(value);
  return quoted(value);
}

/** Where in `text` the keyword matched by `word` (a regexp) first occurs outside
 * strings, parentheses and brackets, as a word of its own; or -1. */
function topLevel(text, word) {
  const sticky = new RegExp(word.source, "iy");  // matched in place, no copies
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' || ch === "'") {
      for (i++; i < text.length && text[i] !== ch; i++) if (text[i] === "\\") i++;
    } else if (ch === "(" || ch === "[") depth++;
    else if (ch === ")" || ch === "]") depth--;
    else if (depth === 0 && !/[A-Za-z0-9_.-]/.test(text[i - 1] ?? " ")) {
      sticky.lastIndex = i;
      if (sticky.test(text)) return i;
    }
  }
  return -1;
}

/** `query` narrowed by `condition`: `<query's condition> and <condition>`, its `order by`
 * and `limit` kept at the end, an `or` in it put in parentheses so `and` does not bind
 * to its last part. A condition already there is not added twice. */
export function andCondition(query, condition) {
  const at = topLevel(query, /(order\s+by|limit)\b/);
  const head = query.slice(0, at < 0 ? query.length : at).trim();
  const tail = at < 0 ? "" : query.slice(at).trim();
  let combined = condition;
  if (topLevel(head, /or\b/) >= 0) combined = `(${head}) and ${condition}`;
  else if (head === condition || head.endsWith(` and ${condition}`)) combined = head;
  else if (head) combined = `${head} and ${condition}`;
  return tail ? `${combined} ${tail}` : combined;
}
