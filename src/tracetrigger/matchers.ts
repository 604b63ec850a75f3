import { errorMessage } from '../error-message.ts';
// Alertmanager matchers: `label="value"`, `label!="value"`, `label=~"re"`,
// `label!~"re"`, optionally unquoted values and a surrounding `{...}` with
// comma-separated matchers, as amtool and alertmanager.yml accept them.
//
// Hand-written because no maintained npm package parses this syntax (the
// PromQL parsers, e.g. @prometheus-io/lezer-promql, parse PromQL selectors,
// whose quoting and `{}` rules differ, and pull in a grammar runtime for one
// line of text). The rules follow Alertmanager's pkg/labels: regexes are
// fully anchored (`^(?:re)$`); a label that is absent has the value "", so
// `x!="a"` matches an alert without x and `x=""` does too. JavaScript's
// RegExp stands in for Go's RE2; the common syntax (classes, alternation,
// repetition) is the same, and patterns RE2 would reject (look-around,
// back-references) are rejected here too.
export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
  /** Present for =~ and !~: the anchored pattern. */
  regex?: RegExp;
}

export type MatcherParse = { ok: true; matchers: Matcher[] } | { ok: false; error: string };

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const UNSUPPORTED_RE = /\(\?[=!<]|\\[1-9]|\\k</;

/** Parses one matcher string, which may itself hold several (`{a="1", b=~"2"}`). */
export function parseMatchers(text: string): MatcherParse {
  let body = text.trim();
  if (body.startsWith('{')) {
    if (!body.endsWith('}')) return { ok: false, error: `${JSON.stringify(text)}: '{' without a closing '}'` };
    body = body.slice(1, -1).trim();
  }
  const matchers: Matcher[] = [];
  let pos = 0;
  const fail = (why: string): MatcherParse => ({ ok: false, error: `${JSON.stringify(text)}: ${why}` });
  const skipSpace = (): void => {
    while (pos < body.length && /\s/.test(body.charAt(pos))) pos++;
  };
  while (true) {
    skipSpace();
    if (pos >= body.length) break;
    const nameMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(body.slice(pos));
    if (nameMatch === null) return fail(`expected a label name at position ${pos}`);
    const name = nameMatch[0];
    pos += name.length;
    skipSpace();
    const opMatch = /^(=~|!~|!=|=)/.exec(body.slice(pos));
    if (opMatch === null) return fail(`expected =, !=, =~ or !~ after label ${name}`);
    const op = opMatch[0] as MatchOp;
    pos += op.length;
    skipSpace();
    let value: string;
    if (body.charAt(pos) === '"') {
      const parsed = readQuoted(body, pos);
      if (parsed === undefined) return fail(`unterminated or badly escaped quoted value for label ${name}`);
      value = parsed.value;
      pos = parsed.end;
    } else {
      const end = body.indexOf(',', pos);
      value = (end === -1 ? body.slice(pos) : body.slice(pos, end)).trim();
      if (/["{}]/.test(value)) return fail(`unquoted value ${JSON.stringify(value)} holds a quote or brace; quote it`);
      pos = end === -1 ? body.length : end;
    }
    const matcher: Matcher = { name, op, value };
    if (op === '=~' || op === '!~') {
      if (UNSUPPORTED_RE.test(value))
        return fail(
          `regex ${JSON.stringify(value)} uses look-around or back-references, which Alertmanager's RE2 does not support`,
        );
      try {
        matcher.regex = new RegExp(`^(?:${value})$`, 'u');
      } catch (error) {
        return fail(`invalid regex ${JSON.stringify(value)}: ${errorMessage(error)}`);
      }
    }
    matchers.push(matcher);
    skipSpace();
    if (pos >= body.length) break;
    if (body.charAt(pos) !== ',') return fail(`expected ',' between matchers at position ${pos}`);
    pos++;
  }
  if (matchers.length === 0) return fail('no matcher');
  return { ok: true, matchers };
}

/** Parses every entry of spec.alert.matchers; the errors name each bad entry. */
export function parseMatcherList(texts: readonly string[]): MatcherParse {
  const all: Matcher[] = [];
  const errors: string[] = [];
  for (const text of texts) {
    const parsed = parseMatchers(text);
    if (parsed.ok) all.push(...parsed.matchers);
    else errors.push(parsed.error);
  }
  return errors.length > 0 ? { ok: false, error: errors.join('; ') } : { ok: true, matchers: all };
}

function readQuoted(text: string, start: number): { value: string; end: number } | undefined {
  let out = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '"') return { value: out, end: i + 1 };
    if (c === '\\') {
      const next = text.charAt(i + 1);
      if (next === '') return undefined;
      out += next === 'n' ? '\n' : next === 't' ? '\t' : next;
      i++;
    } else out += c;
  }
  return undefined;
}

/** True when the labels satisfy the matcher; an absent label counts as "". */
export function matches(matcher: Matcher, labels: Readonly<Record<string, string>>): boolean {
  const value = labels[matcher.name] ?? '';
  switch (matcher.op) {
    case '=':
      return value === matcher.value;
    case '!=':
      return value !== matcher.value;
    case '=~':
      return matcher.regex?.test(value) ?? false;
    case '!~':
      return !(matcher.regex?.test(value) ?? false);
  }
}

export function matchesAll(matchers: readonly Matcher[], labels: Readonly<Record<string, string>>): boolean {
  return matchers.every((m) => matches(m, labels));
}

export function isLabelName(name: string): boolean {
  return LABEL_NAME.test(name);
}
