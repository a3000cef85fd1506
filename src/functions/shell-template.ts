// A shell function's command template: checked where it is registered and again where it runs
// (every placeholder must stand bare in command text), then rendered with `{name}` placeholders
// filled from the task's kwargs, each value quoted so the shell sees it as exactly one literal
// word, never as syntax.

import type { Json } from '../protocol/api';
import { FerryError } from '../protocol/errors';

/**
 * A template Ferry cannot render: a placeholder with no kwarg, a lone brace, a NUL character.
 * Reported as a failed task (FERRY_FUNCTION_ERROR, name ShellTemplateError), since it is the
 * caller's mistake and running the command anyway could do something else than they meant.
 */
export class ShellTemplateError extends FerryError {
  override readonly name = 'ShellTemplateError';
  constructor(message: string) {
    super('INVALID_FUNCTION_CODE', message);
  }
}

/**
 * POSIX single-quote quoting: inside '…' every character is literal but `'` itself, which is
 * written as `'\''` (close, escaped quote, reopen). `''` is the empty argument.
 */
export function quoteShellWord(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The text a JSON value stands for on a command line: strings as they are, anything else as its JSON. */
export function shellText(value: Json): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A template split into literal shell text and `{name}` placeholders (at their offsets). */
type Segment = { text: string } | { name: string; offset: number };

/**
 * Splits a template by the `{name}` grammar: `{{` and `}}` are literal braces. The grammar is
 * Python's str.format without its extras (positional `{}`/`{0}`, attributes, format specs), as
 * Globus Compute's ShellFunction users know it: a lone `{` or `}` is an error, not a literal, so
 * that `${HOME}` or `awk '{print $1}'` must be written `${{HOME}}`, `awk '{{print $1}}'`, and a typo
 * like `{name }` fails loudly instead of running a different command.
 */
function splitTemplate(template: string): Segment[] {
  if (template.includes('\0')) throw new ShellTemplateError('the command template contains a NUL character');
  const segments: Segment[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    const close = template.indexOf('}', i);
    if (open === -1 && close === -1) {
      text += template.slice(i);
      break;
    }
    if (close !== -1 && (open === -1 || close < open)) {
      if (template[close + 1] !== '}') throw new ShellTemplateError(`lone '}' at offset ${close} of the command template; write '}}' for a literal brace`);
      text += template.slice(i, close) + '}';
      i = close + 2;
      continue;
    }
    text += template.slice(i, open);
    if (template[open + 1] === '{') {
      text += '{';
      i = open + 2;
      continue;
    }
    const end = template.indexOf('}', open + 1);
    const name = end === -1 ? '' : template.slice(open + 1, end);
    if (end === -1 || !NAME.test(name)) {
      const shown = end === -1 ? template.slice(open, open + 20) : template.slice(open, end + 1);
      throw new ShellTemplateError(`'${shown}' at offset ${open} of the command template is not a placeholder ({name}, a letter or _ then letters, digits, _); write '{{' for a literal brace`);
    }
    if (text) segments.push({ text });
    text = '';
    segments.push({ name, offset: open });
    i = end + 1;
  }
  if (text) segments.push({ text });
  return segments;
}

/**
 * A checked template: its segments, and whether its end is plain command text, where positional
 * args may be appended (not inside a comment or a here-document).
 */
export interface ShellTemplate {
  readonly segments: readonly Segment[];
  readonly endsInCommandText: boolean;
}

/**
 * Parses a template and checks where each placeholder stands in the shell's grammar. A value is
 * quoted as one '…' word, which is literal only where the shell reads words: a placeholder inside
 * quotes the template wrote (`'{p}'`, `"{p}"`, `$'{p}'`), after a backslash, in backquotes, in
 * `${…}` or `$((…))`, in a comment or a here-document would have its quotes read as text and its
 * value as code, so the template is refused, naming the placeholder and where it stands. (Quoting
 * for each of those contexts instead would need the shell's whole grammar, dialects included,
 * right; refusing needs only to recognise that a placeholder is not bare, and erring is a refusal.)
 * Write placeholders bare: `echo {msg}`, `grep -c {pattern} file`, `--name={name}`.
 */
export function parseShellTemplate(template: string): ShellTemplate {
  const segments = splitTemplate(template);
  const lexer = new ContextLexer();
  for (const segment of segments) {
    if ('text' in segment) {
      for (const ch of segment.text) lexer.char(ch);
      continue;
    }
    const where = lexer.placeholder();
    if (where !== null) {
      throw new ShellTemplateError(`{${segment.name}} at offset ${segment.offset} of the command template stands ${where}, where its quoted value would be read as shell code; write the placeholder bare (echo {${segment.name}}, not echo "{${segment.name}}")`);
    }
  }
  const open = lexer.end();
  if (open === 'unclosed') throw new ShellTemplateError(`the command template ends ${lexer.describe()}: close it`);
  return { segments, endsInCommandText: open === 'command' };
}

type Frame = 'top' | 'command-substitution' | 'double-quotes' | 'backquotes' | 'parameter' | 'arithmetic';
type Mode = 'code' | 'single-quotes' | 'ansi-quotes' | 'comment' | 'here-document';

const FRAME_WORDS: Record<Frame, string> = {
  top: 'in command text',
  'command-substitution': 'in $(…)',
  'double-quotes': 'inside double quotes "…"',
  backquotes: 'inside backquotes `…`',
  parameter: 'inside ${…}',
  arithmetic: 'inside $((…))',
};
const MODE_WORDS: Record<Exclude<Mode, 'code'>, string> = {
  'single-quotes': "inside single quotes '…'",
  'ansi-quotes': "inside $'…'",
  comment: 'in a # comment',
  'here-document': 'in a here-document',
};
// Characters after which a `#` starts a comment.
const WORD_BREAK = new Set([' ', '\t', '\n', ';', '&', '|', '(', ')', '<', '>']);

/**
 * Follows the quoting state of POSIX sh (and bash's `$'…'`) over a template's text, one character
 * at a time, far enough to tell where a placeholder stands: a stack of nested contexts (`$(`, `"`,
 * `` ` ``, `${`, `$((`), quote and comment modes, and pending here-documents.
 */
class ContextLexer {
  private readonly frames: Array<{ kind: Frame; depth: number }> = [{ kind: 'top', depth: 0 }];
  private mode: Mode = 'code';
  private escaped = false;
  private prev = '\n';
  /** Characters held back to see what follows: `$`, `$(`, `<`, `<<`, a here-document's word. */
  private pending = '';
  private readonly heredocs: Array<{ delimiter: string; stripTabs: boolean }> = [];
  private heredocWord: { text: string; stripTabs: boolean; started: boolean } | null = null;
  private line = '';
  private caseInSubstitution = false;
  private recentWord = '';

  private get frame(): { kind: Frame; depth: number } {
    return this.frames[this.frames.length - 1]!;
  }

  /** Where a placeholder at this point stands, or null when it is a bare word of command text. */
  placeholder(): string | null {
    this.flush();
    if (this.escaped) return 'after a backslash';
    // `$'…'` is bash's quoting with escapes; `$` then a quoted word would become it.
    if (this.prev === '$') return "right after a $";
    if (this.heredocWord) return "in a here-document's delimiter";
    if (this.mode !== 'code') return MODE_WORDS[this.mode];
    const quoted = this.frames.find((f) => f.kind !== 'top' && f.kind !== 'command-substitution');
    if (quoted) return FRAME_WORDS[quoted.kind];
    // A `case` pattern's `)` inside $(…) ends the substitution early for this lexer; rather than
    // guess where it really ends, refuse.
    if (this.caseInSubstitution) return 'after a case statement inside $(…)';
    this.prev = 'x';
    return null;
  }

  /** 'command' when the text ends in plain command text, 'inert' in a comment or here-document, 'unclosed' inside quotes or a substitution. */
  end(): 'command' | 'inert' | 'unclosed' {
    this.flush();
    if (this.heredocWord) this.endHeredocWord();
    // Even a last line that is the delimiter is inert: appended args would make it another line
    // of the document, and a value holding the delimiter line would end it.
    if (this.mode === 'here-document' || this.mode === 'comment') return 'inert';
    if (this.mode !== 'code' || this.escaped || this.frames.length > 1) return 'unclosed';
    return this.heredocs.length ? 'inert' : 'command';
  }

  describe(): string {
    return this.mode !== 'code' && this.mode !== 'comment' ? MODE_WORDS[this.mode] : FRAME_WORDS[this.frame.kind];
  }

  char(ch: string): void {
    if (this.mode === 'here-document') return this.heredocChar(ch);
    if (this.heredocWord) return this.heredocWordChar(ch);
    if (this.pending) {
      const held = this.pending + ch;
      if (held === '$(' || held === '<<' || held === '$((') {
        this.pending = held;
        return;
      }
      this.pending = '';
      this.resolve(held.slice(0, -1), ch);
      return;
    }
    this.step(ch);
  }

  private flush(): void {
    if (!this.pending) return;
    const held = this.pending;
    this.pending = '';
    this.resolve(held, '');
  }

  // Acts on held-back characters once the next one (`next`, '' at a placeholder or the end) is known.
  private resolve(held: string, next: string): void {
    if (held === '$') {
      if (next === "'" && this.mode === 'code' && this.frame.kind !== 'double-quotes') {
        this.mode = 'ansi-quotes';
        this.prev = "'";
        return;
      }
      if (next === '{') {
        this.frames.push({ kind: 'parameter', depth: 0 });
        this.prev = '{';
        return;
      }
      this.prev = '$';
    } else if (held === '$(') {
      this.frames.push({ kind: 'command-substitution', depth: 0 });
      this.prev = '(';
    } else if (held === '$((') {
      this.frames.push({ kind: 'arithmetic', depth: 0 });
      this.prev = '(';
    } else if (held === '<<') {
      this.heredocWord = { text: '', stripTabs: false, started: false };
      this.prev = '<';
    } else {
      this.prev = held.slice(-1);
    }
    if (next) this.char(next);
  }

  private step(ch: string): void {
    if (this.escaped) {
      this.escaped = false;
      this.prev = ch === '\n' ? this.prev : 'x';
      return;
    }
    if (this.mode === 'comment') {
      if (ch === '\n') this.newline();
      return;
    }
    if (this.mode === 'single-quotes') {
      if (ch === "'") this.mode = 'code';
      this.prev = 'x';
      return;
    }
    if (this.mode === 'ansi-quotes') {
      if (ch === '\\') this.escaped = true;
      else if (ch === "'") this.mode = 'code';
      this.prev = 'x';
      return;
    }
    const frame = this.frame;
    if (ch === '\\') {
      this.escaped = true;
      return;
    }
    if (frame.kind === 'backquotes') {
      if (ch === '`') this.frames.pop();
      this.prev = 'x';
      return;
    }
    if (ch === '`') {
      this.frames.push({ kind: 'backquotes', depth: 0 });
      this.prev = 'x';
      return;
    }
    if (ch === '$') {
      this.pending = '$';
      return;
    }
    if (frame.kind === 'double-quotes') {
      if (ch === '"') this.frames.pop();
      this.prev = 'x';
      return;
    }
    if (frame.kind === 'arithmetic') {
      if (ch === '(') frame.depth++;
      else if (ch === ')') {
        if (frame.depth > 0) frame.depth--;
        else this.frames.pop(); // the first `)` of `))`; the second is read in the frame below
      }
      this.prev = ch;
      return;
    }
    if (frame.kind === 'parameter' && ch === '}') {
      this.frames.pop();
      this.prev = 'x';
      return;
    }
    if (ch === "'") {
      // In "${x:-'a'}" a single quote is a plain character.
      if (!this.frames.some((f) => f.kind === 'double-quotes')) this.mode = 'single-quotes';
      this.prev = 'x';
      return;
    }
    if (ch === '"') {
      this.frames.push({ kind: 'double-quotes', depth: 0 });
      this.prev = 'x';
      return;
    }
    if (frame.kind === 'parameter') {
      this.prev = 'x';
      return;
    }
    // Command text: top level or inside $(…).
    if (ch === '#' && WORD_BREAK.has(this.prev)) {
      this.mode = 'comment';
      return;
    }
    if (ch === '<' && this.prev !== '<') {
      this.pending = '<';
      return;
    }
    if (ch === '(') frame.depth++;
    if (ch === ')' && frame.kind === 'command-substitution') {
      if (frame.depth > 0) frame.depth--;
      else this.frames.pop();
    }
    if (/[A-Za-z_]/.test(ch)) this.recentWord = WORD_BREAK.has(this.prev) ? ch : this.recentWord + ch;
    else {
      if (this.recentWord === 'case' && this.frames.some((f) => f.kind === 'command-substitution')) this.caseInSubstitution = true;
      this.recentWord = '';
    }
    if (ch === '\n') this.newline();
    this.prev = ch;
  }

  private newline(): void {
    this.prev = '\n';
    this.mode = this.heredocs.length ? 'here-document' : 'code';
    this.line = '';
  }

  // The word after `<<` (or `<<-`): its quotes removed, it is the line that ends the document.
  private heredocWordChar(ch: string): void {
    const word = this.heredocWord!;
    if (!word.started) {
      if (ch === '-' && !word.stripTabs && word.text === '') {
        word.stripTabs = true;
        return;
      }
      if (ch === ' ' || ch === '\t') return;
      word.started = true;
    }
    if (WORD_BREAK.has(ch)) {
      this.endHeredocWord();
      this.char(ch);
      return;
    }
    if (ch !== "'" && ch !== '"' && ch !== '\\') word.text += ch;
  }

  private endHeredocWord(): void {
    const word = this.heredocWord!;
    this.heredocWord = null;
    this.heredocs.push({ delimiter: word.text, stripTabs: word.stripTabs });
    this.prev = 'x';
  }

  private heredocChar(ch: string): void {
    if (ch !== '\n') {
      this.line += ch;
      return;
    }
    const current = this.heredocs[0]!;
    const line = current.stripTabs ? this.line.replace(/^\t+/, '') : this.line;
    this.line = '';
    if (line === current.delimiter) {
      this.heredocs.shift();
      if (!this.heredocs.length) {
        this.mode = 'code';
        this.prev = '\n';
      }
    }
  }
}

/**
 * Fills `{name}` from `kwargs`, each value quoted as one word; `{{` and `}}` are literal braces.
 * The template is checked first (parseShellTemplate): a placeholder that does not stand bare in
 * command text is refused, whatever the values.
 */
export function renderShellTemplate(template: string | ShellTemplate, kwargs: Readonly<Record<string, Json>> = {}): string {
  const parsed = typeof template === 'string' ? parseShellTemplate(template) : template;
  let out = '';
  for (const segment of parsed.segments) {
    if ('text' in segment) {
      out += segment.text;
      continue;
    }
    const { name } = segment;
    if (!Object.prototype.hasOwnProperty.call(kwargs, name)) {
      throw new ShellTemplateError(`the command template uses {${name}}, but the task has no kwarg '${name}'`);
    }
    out += quoteShellWord(checked(shellText(kwargs[name]!), `kwarg '${name}'`));
  }
  return out;
}

/**
 * Positional args are appended to the rendered command, each quoted as one word, separated by
 * spaces: template `python3 analyze.py` with args ["a b", 2] runs `python3 analyze.py 'a b' '2'`.
 * They land at the end of the command line, so after a pipeline they go to its last command. A
 * template ending in a comment or a here-document takes none: a newline in a value would end the
 * comment or the document, and its next line would be run.
 */
export function appendShellArgs(command: string, args: readonly Json[], template: Pick<ShellTemplate, 'endsInCommandText'> = { endsInCommandText: true }): string {
  if (args.length === 0) return command;
  if (!template.endsInCommandText) throw new ShellTemplateError('the command template ends in a comment or a here-document, where positional args cannot be appended; pass values as kwargs');
  return `${command} ${args.map((a, i) => quoteShellWord(checked(shellText(a), `args[${i}]`))).join(' ')}`;
}

/** The command a task runs: the template checked, its kwargs filled in, its args appended. */
export function renderShellCommand(template: string, kwargs: Readonly<Record<string, Json>>, args: readonly Json[]): string {
  const parsed = parseShellTemplate(template);
  return appendShellArgs(renderShellTemplate(parsed, kwargs), args, parsed);
}

// A C string (argv) cannot carry NUL: the kernel would see the value cut short, so refuse it.
function checked(text: string, what: string): string {
  if (text.includes('\0')) throw new ShellTemplateError(`${what} contains a NUL character, which no command-line argument can carry`);
  return text;
}
