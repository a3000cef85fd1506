// Renders a shell function's command template: `{name}` placeholders are filled from the task's
// kwargs, each value quoted so the shell sees it as exactly one literal word, never as syntax.

import type { Json } from '../../protocol/api';

/**
 * A template Ferry cannot render: a placeholder with no kwarg, a lone brace, a NUL character.
 * Reported as a failed task (FERRY_FUNCTION_ERROR, name ShellTemplateError), since it is the
 * caller's mistake and running the command anyway could do something else than they meant.
 */
export class ShellTemplateError extends Error {
  override readonly name = 'ShellTemplateError';
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

/**
 * Fills `{name}` from `kwargs`, quoted; `{{` and `}}` are literal braces. The grammar is Python's
 * str.format without its extras (positional `{}`/`{0}`, attributes, format specs), as Globus
 * Compute's ShellFunction users know it: a lone `{` or `}` is an error, not a literal, so that
 * `${HOME}` or `awk '{print $1}'` must be written `${{HOME}}`, `awk '{{print $1}}'`, and a typo
 * like `{name }` fails loudly instead of running a different command.
 *
 * Placeholders are replaced wherever they stand, also inside quotes the template writes itself:
 * `echo "{msg}"` prints the quotes Ferry adds. Write placeholders bare: `echo {msg}`.
 */
export function renderShellTemplate(template: string, kwargs: Readonly<Record<string, Json>> = {}): string {
  if (template.includes('\0')) throw new ShellTemplateError('the command template contains a NUL character');
  let out = '';
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf('{', i);
    const close = template.indexOf('}', i);
    if (open === -1 && close === -1) {
      out += template.slice(i);
      break;
    }
    if (close !== -1 && (open === -1 || close < open)) {
      if (template[close + 1] !== '}') throw new ShellTemplateError(`lone '}' at offset ${close} of the command template; write '}}' for a literal brace`);
      out += template.slice(i, close) + '}';
      i = close + 2;
      continue;
    }
    out += template.slice(i, open);
    if (template[open + 1] === '{') {
      out += '{';
      i = open + 2;
      continue;
    }
    const end = template.indexOf('}', open + 1);
    const name = end === -1 ? '' : template.slice(open + 1, end);
    if (end === -1 || !NAME.test(name)) {
      const shown = end === -1 ? template.slice(open, open + 20) : template.slice(open, end + 1);
      throw new ShellTemplateError(`'${shown}' at offset ${open} of the command template is not a placeholder ({name}, a letter or _ then letters, digits, _); write '{{' for a literal brace`);
    }
    if (!Object.prototype.hasOwnProperty.call(kwargs, name)) {
      throw new ShellTemplateError(`the command template uses {${name}}, but the task has no kwarg '${name}'`);
    }
    out += quoteShellWord(checked(shellText(kwargs[name]!), `kwarg '${name}'`));
    i = end + 1;
  }
  return out;
}

/**
 * Positional args are appended to the rendered command, each quoted as one word, separated by
 * spaces: template `python3 analyze.py` with args ["a b", 2] runs `python3 analyze.py 'a b' '2'`.
 * They land at the end of the command line, so after a pipeline they go to its last command, and
 * after a trailing `# comment` they are part of the comment; use kwargs to put values elsewhere.
 */
export function appendShellArgs(command: string, args: readonly Json[]): string {
  if (args.length === 0) return command;
  return `${command} ${args.map((a, i) => quoteShellWord(checked(shellText(a), `args[${i}]`))).join(' ')}`;
}

// A C string (argv) cannot carry NUL: the kernel would see the value cut short, so refuse it.
function checked(text: string, what: string): string {
  if (text.includes('\0')) throw new ShellTemplateError(`${what} contains a NUL character, which no command-line argument can carry`);
  return text;
}
