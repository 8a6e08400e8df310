// node tests/wasi.mjs web/run.wasm ARGS...: runs the WebAssembly build of run.c (wasm32-wasi)
// as ./run would run, with node's WASI: the whole file system visible at / (give absolute paths), the environment
// passed on, the exit status returned. make test-wasm runs the kernel-path checks through it.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env } from 'node:process';
const [wasmPath, ...args] = argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: ['run', ...args], env, preopens: { '/': '/' }, returnOnExit: true });
const mod = await WebAssembly.compile(await readFile(wasmPath));
const inst = await WebAssembly.instantiate(mod, wasi.getImportObject());
process.exitCode = wasi.start(inst);
