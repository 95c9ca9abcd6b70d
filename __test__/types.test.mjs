// index.d.ts (and each subpath's .d.ts) against what the package really
// exports; the generated entry files against their generator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import ts from 'typescript';
import { typeCheck, importEvery } from './helpers/typescript.mjs';

const require = createRequire(import.meta.url);
const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = require('../package.json');

/** Subpath → { dts, cjs } as package.json's exports map names them. */
const entries = Object.entries(pkg.exports)
  .filter(([, target]) => typeof target === 'object')
  .map(([subpath, target]) => ({ subpath, dts: path.join(root, target.types), cjs: path.join(root, target.require) }));

const program = ts.createProgram(entries.map((e) => e.dts), { strict: true, noEmit: true });
const checker = program.getTypeChecker();

/** Value exports declared by a .d.ts: name → members (for classes). */
function declaredValues(file) {
  const source = program.getSourceFile(file);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  const out = new Map();
  for (const sym of checker.getExportsOfModule(moduleSymbol)) {
    const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym;
    if (!(target.flags & ts.SymbolFlags.Value)) continue;
    const members = target.flags & ts.SymbolFlags.Class ? [...target.members.keys()].filter((k) => k !== '__constructor') : null;
    out.set(sym.escapedName, members);
  }
  return out;
}

/** Instance-visible members of a runtime class (prototype chain + own props of an instance). */
function runtimeMembers(Class) {
  const names = new Set(Object.getOwnPropertyNames(Class.prototype).filter((n) => n !== 'constructor'));
  for (const n of Object.keys(new Class(path.join(root, 'no-such-project')))) names.add(n);
  return [...names].sort();
}

for (const { subpath, dts, cjs } of entries) {
  test(`${subpath}: .d.ts declares exactly the runtime exports`, () => {
    const declared = declaredValues(dts);
    const runtime = require(cjs);
    assert.deepEqual([...declared.keys()].sort(), Object.keys(runtime).sort());
    for (const [name, members] of declared) {
      if (members) assert.deepEqual(members.sort(), runtimeMembers(runtime[name]), `members of ${name}`);
      else assert.ok(runtime[name] !== undefined, name);
    }
  });
}

test('a TypeScript user compiles against the types, and misuse is caught', () => {
  const usage = path.join(root, '__test__', 'fixtures', 'types-usage.ts');
  const text = typeCheck(usage).errors;
  assert.deepEqual(text, []);
});

test('each entry point resolves to its .d.ts for import and require (NodeNext), with every runtime name', () => {
  const modules = entries.map(({ subpath, cjs }) => ({
    specifier: path.posix.join(pkg.name, subpath),
    names: Object.keys(require(cjs)).filter((n) => n !== 'default'),
  }));
  for (const [format, ext] of [['esm', 'mts'], ['cjs', 'cts']]) {
    // Not written: the text is handed to the compiler as this file's.
    const file = path.join(root, '__test__', 'fixtures', `every-entry.${ext}`);
    const { errors, program } = typeCheck(file, importEvery(modules, format));
    assert.deepEqual(errors, [], format);
    const used = new Set(program.getSourceFiles().map((f) => path.normalize(f.fileName)));
    for (const { subpath, dts } of entries) assert.ok(used.has(dts), `${format} ${subpath}: ${dts}`);
  }
});

test('the generated entry files are what scripts/gen-entries.js writes now', () => {
  const { status, stderr } = spawnSync(process.execPath, [path.join(root, 'scripts', 'gen-entries.js'), '--check'], { encoding: 'utf8' });
  assert.deepEqual({ status, stderr }, { status: 0, stderr: '' });
});
