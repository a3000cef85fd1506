import { describe, expect, it } from 'vitest';
import { appendShellArgs, quoteShellWord, renderShellTemplate, ShellTemplateError } from './shell-template';

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
