import { describe, expect, it } from 'vitest';
import { appendShellArgs, parseShellTemplate, quoteShellWord, renderShellCommand, renderShellTemplate, ShellTemplateError } from './shell-template';

describe('quoteShellWord', () => {
  // What a hostile or merely unusual value becomes: always one '…' word, `'` as '\''.
  it.each([
    ['plain', `'plain'`],
    ['', `''`],
    ['; rm -rf /', `'; rm -rf /'`],
    ['$(id)', `'$(id)'`],
    ['`id`', `'\`id\`'`],
    ["it's", `'it'\\''s'`],
    ["'", `''\\'''`],
    ['"double"', `'"double"'`],
    ['a\nb', `'a\nb'`],
    ['naïve 🚀 データ', `'naïve 🚀 データ'`],
    ['$HOME ~ * ?', `'$HOME ~ * ?'`],
    ['back\\slash', `'back\\slash'`],
    ['-n', `'-n'`],
  ])('%j → %s', (value, quoted) => {
    expect(quoteShellWord(value)).toBe(quoted);
  });
});

describe('renderShellTemplate', () => {
  it('fills each placeholder with its kwarg, quoted', () => {
    expect(renderShellTemplate('python3 analyze.py --input {path} --threshold {t}', { path: '/data/run 1.h5', t: 0.5 })).toBe(
      `python3 analyze.py --input '/data/run 1.h5' --threshold '0.5'`,
    );
    expect(renderShellTemplate('echo {msg} {msg}', { msg: '; rm -rf /' })).toBe(`echo '; rm -rf /' '; rm -rf /'`);
    expect(renderShellTemplate('echo {_x1}', { _x1: '' })).toBe(`echo ''`);
  });

  it('writes non-strings as their JSON text', () => {
    const out = renderShellTemplate('f {n} {b} {z} {a} {o}', { n: 42, b: true, z: null, a: [1, 'two'], o: { k: "it's" } });
    expect(out).toBe(`f '42' 'true' 'null' '[1,"two"]' '{"k":"it'\\''s"}'`);
  });

  it('reads {{ and }} as literal braces', () => {
    expect(renderShellTemplate("awk '{{print $1}}' {f}", { f: 'x.txt' })).toBe(`awk '{print $1}' 'x.txt'`);
    expect(renderShellTemplate('echo ${{HOME}} {{x}} }}{{', {})).toBe('echo ${HOME} {x} }{');
    expect(renderShellTemplate('{{{v}}}', { v: 'a' })).toBe(`{'a'}`);
    expect(renderShellTemplate('no placeholders at all', {})).toBe('no placeholders at all');
  });

  it.each([
    ['echo {path}', {}, /no kwarg 'path'/],
    ['echo {path}', { other: 1 }, /no kwarg 'path'/],
    ['echo {toString}', {}, /no kwarg 'toString'/],
    ["awk '{print $1}'", {}, /'\{print \$1\}' at offset 5 .*not a placeholder/],
    ['echo {}', {}, /'\{\}' .*not a placeholder/],
    ['echo {0}', {}, /'\{0\}' .*not a placeholder/],
    ['echo {name }', { name: 'x' }, /not a placeholder/],
    ['echo {unclosed', { unclosed: 'x' }, /'\{unclosed' at offset 5/],
    ['echo }', {}, /lone '\}' at offset 5/],
    ['echo \0', {}, /NUL/],
    ['echo {v}', { v: 'a\0b' }, /kwarg 'v' contains a NUL/],
  ])('refuses %j with kwargs %j', (template, kwargs, message) => {
    const render = () => renderShellTemplate(template, kwargs);
    expect(render).toThrow(ShellTemplateError);
    expect(render).toThrow(message);
  });
});

describe('appendShellArgs', () => {
  it('appends positional args as quoted words, and nothing when there are none', () => {
    expect(appendShellArgs('python3 analyze.py', ['a b', 2, '$(id)'])).toBe(`python3 analyze.py 'a b' '2' '$(id)'`);
    expect(appendShellArgs('hostname', [])).toBe('hostname');
    expect(() => appendShellArgs('echo', ['\0'])).toThrow(/args\[0\] contains a NUL/);
  });
});

describe('parseShellTemplate: where a placeholder may stand', () => {
  // Each of these would read a quoted value as code: the template is refused, naming the placeholder.
  it.each([
    ["grep -c '{pattern}' /dev/null", 'pattern', "inside single quotes '…'"],
    ["grep -c 'x{pattern}y' /dev/null", 'pattern', "inside single quotes '…'"],
    ['echo "{msg}"', 'msg', 'inside double quotes "…"'],
    ['echo "hello {msg}!"', 'msg', 'inside double quotes "…"'],
    ['echo "$(echo {msg})"', 'msg', 'inside double quotes "…"'],
    ['echo "$(echo "a" "b") {msg}"', 'msg', 'inside double quotes "…"'],
    ["echo $'{msg}'", 'msg', "inside $'…'"],
    ["echo $'\\' {msg} '", 'msg', "inside $'…'"],
    ['echo \\{msg}', 'msg', 'after a backslash'],
    ['echo ${msg}'.replace('${msg}', '$' + '{msg}'), 'msg', 'right after a $'],
    ['echo `echo {msg}`', 'msg', 'inside backquotes `…`'],
    ['echo ${{X:-{msg}}}', 'msg', 'inside ${…}'],
    ['echo $(( {n} + 1 ))', 'n', 'inside $((…))'],
    ['echo hi # {msg}', 'msg', 'in a # comment'],
    ['cat <<EOF\n{msg}\nEOF', 'msg', 'in a here-document'],
    ["cat <<-'EOF'\n\t{msg}\n\tEOF", 'msg', 'in a here-document'],
    ['cat <<{msg}\nx\n', 'msg', "in a here-document's delimiter"],
    ['echo $(case a in a) echo;; esac) {msg}', 'msg', 'after a case statement inside $(…)'],
  ])('refuses %j', (template, name, where) => {
    expect(() => parseShellTemplate(template)).toThrow(ShellTemplateError);
    expect(() => parseShellTemplate(template)).toThrow(`{${name}} at offset ${template.indexOf(`{${name}}`)} of the command template stands ${where}`);
  });

  it.each([
    'echo {msg}',
    'grep -c {pattern} /dev/null',
    'cmd --name={v} x{v}y',
    "awk '{{print $1}}' {f} | sort",
    'echo "a" {v} \'b\' "c\\"" {v}',
    "echo 'it'\"s\" {v}",
    'echo $(basename {v})',
    'echo $# # a comment {{x}}\necho {v}',
    "cat <<'EOF'\n$(not run) {{x}}\nEOF\necho {v}",
    'x=$(( 1 << 2 )); echo "$x" {v}',
    'echo a#{v}',
  ])('accepts %j', (template) => {
    expect(() => parseShellTemplate(template)).not.toThrow();
  });

  it('refuses a template that ends inside quotes or a substitution', () => {
    expect(() => parseShellTemplate('echo "unclosed {{')).toThrow('ends inside double quotes');
    expect(() => parseShellTemplate("echo 'x")).toThrow("ends inside single quotes");
    expect(() => parseShellTemplate('echo $(date')).toThrow('ends in $(…)');
  });

  it('refuses positional args after a template ending in a comment or a here-document, where a newline would end it', () => {
    expect(() => renderShellCommand('echo hi # note', {}, ['x\ntouch PWNED #'])).toThrow(/ends in a comment or a here-document/);
    expect(() => renderShellCommand('cat <<EOF\nhi', {}, ['x'])).toThrow(/ends in a comment or a here-document/);
    expect(renderShellCommand('echo hi # note', {}, [])).toBe('echo hi # note');
    expect(() => renderShellCommand('cat <<EOF\nhi\nEOF', {}, ['EOF\ntouch PWNED'])).toThrow(/ends in a comment or a here-document/);
    expect(renderShellCommand('cat <<EOF\nhi\nEOF\n', {}, ['x'])).toBe("cat <<EOF\nhi\nEOF\n 'x'");
    expect(renderShellCommand('echo {a}', { a: 1 }, ['b'])).toBe("echo '1' 'b'");
  });
});
