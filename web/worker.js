// worker.js: runs web/run.wasm (run.c built for wasm32-wasi by `make web`) in a Web Worker, so
// that the page stays responsive while a story is written. The page sends
//   {files: {name: ArrayBuffer}, args: [...]}      files land in an in-memory folder "/"
// and gets back, as run.c writes them:
//   {type: 'stdout', bytes: Uint8Array}             each token's bytes, as ./run prints them
//   {type: 'stderr', text}                          run.c's messages and statistics
//   {type: 'files', files: {name: Uint8Array}}      files the run wrote (-m dump's arrays)
//   {type: 'exit', code}                            0, or run.c's error exit (1)
// The WASI (preview 1) calls below are the ones run.wasm imports, no more: arguments, a clock,
// and files read whole from memory (WASI has no mmap; run.c reads the model into memory).
'use strict';

const ERRNO = { SUCCESS: 0, BADF: 8, INVAL: 28, NOENT: 44, NOTDIR: 54, NOSYS: 52 };
const FILETYPE = { CHARACTER_DEVICE: 2, DIRECTORY: 3, REGULAR_FILE: 4 };
const ROOT_FD = 3; // the one preopened folder, "/"

class Exit { constructor(code) { this.code = code; } }

let modulePromise = null; // run.wasm compiled once, instantiated per run (a fresh memory each)

function wasiFor(args, files, post) {
  let memory = null;
  const view = () => new DataView(memory.buffer);
  const bytes = () => new Uint8Array(memory.buffer);
  const encoder = new TextEncoder(), decoder = new TextDecoder();
  const argBytes = args.map((a) => encoder.encode(a + '\0'));
  // open descriptors: fd -> {name, data (Uint8Array), size, pos, write}
  const fds = new Map();
  let nextFd = ROOT_FD + 1;
  const stderrText = [];

  function iovecs(ptr, count) {
    const v = view(), list = [];
    for (let i = 0; i < count; i++) list.push([v.getUint32(ptr + 8 * i, true), v.getUint32(ptr + 8 * i + 4, true)]);
    return list;
  }
  function grow(file, need) { // writable files double as they fill
    if (need <= file.data.length) return;
    const data = new Uint8Array(Math.max(need, 2 * file.data.length, 4096));
    data.set(file.data.subarray(0, file.size));
    file.data = data;
  }
  const imports = {
    args_sizes_get(countPtr, sizePtr) {
      view().setUint32(countPtr, argBytes.length, true);
      view().setUint32(sizePtr, argBytes.reduce((n, a) => n + a.length, 0), true);
      return ERRNO.SUCCESS;
    },
    args_get(argvPtr, bufPtr) {
      argBytes.forEach((a, i) => {
        view().setUint32(argvPtr + 4 * i, bufPtr, true);
        bytes().set(a, bufPtr);
        bufPtr += a.length;
      });
      return ERRNO.SUCCESS;
    },
    clock_time_get(id, precision, timePtr) {
      const ns = BigInt(Math.round((id === 0 ? Date.now() : performance.now()) * 1e6));
      view().setBigUint64(timePtr, ns, true);
      return ERRNO.SUCCESS;
    },
    fd_write(fd, iovs, count, writtenPtr) {
      let total = 0;
      for (const [ptr, len] of iovecs(iovs, count)) {
        const chunk = bytes().slice(ptr, ptr + len);
        if (fd === 1) post({ type: 'stdout', bytes: chunk });
        else if (fd === 2) stderrText.push(decoder.decode(chunk, { stream: true }));
        else {
          const file = fds.get(fd);
          if (!file || !file.write) return ERRNO.BADF;
          grow(file, file.pos + len);
          file.data.set(chunk, file.pos);
          file.pos += len;
          file.size = Math.max(file.size, file.pos);
        }
        total += len;
      }
      view().setUint32(writtenPtr, total, true);
      return ERRNO.SUCCESS;
    },
    fd_read(fd, iovs, count, readPtr) {
      const file = fds.get(fd);
      if (!file) return fd === 0 ? (view().setUint32(readPtr, 0, true), ERRNO.SUCCESS) : ERRNO.BADF; // stdin: empty
      let total = 0;
      for (const [ptr, len] of iovecs(iovs, count)) {
        const n = Math.max(0, Math.min(len, file.size - file.pos));
        bytes().set(file.data.subarray(file.pos, file.pos + n), ptr);
        file.pos += n, total += n;
        if (n < len) break;
      }
      view().setUint32(readPtr, total, true);
      return ERRNO.SUCCESS;
    },
    fd_seek(fd, offset, whence, newPtr) {
      const file = fds.get(fd);
      if (!file) return ERRNO.BADF;
      const base = whence === 0 ? 0 : whence === 1 ? file.pos : file.size;
      const pos = base + Number(offset);
      if (pos < 0) return ERRNO.INVAL;
      file.pos = pos;
      view().setBigUint64(newPtr, BigInt(pos), true);
      return ERRNO.SUCCESS;
    },
    fd_close(fd) {
      const file = fds.get(fd);
      if (!file) return ERRNO.BADF;
      if (file.write) files[file.name] = file.data.slice(0, file.size);
      fds.delete(fd);
      return ERRNO.SUCCESS;
    },
    fd_fdstat_get(fd, statPtr) {
      const type = fd <= 2 ? FILETYPE.CHARACTER_DEVICE : fd === ROOT_FD ? FILETYPE.DIRECTORY : fds.has(fd) ? FILETYPE.REGULAR_FILE : -1;
      if (type < 0) return ERRNO.BADF;
      const v = view();
      v.setUint8(statPtr, type);
      v.setUint16(statPtr + 2, 0, true);
      v.setBigUint64(statPtr + 8, 0xffffffffn, true); // every right
      v.setBigUint64(statPtr + 16, 0xffffffffn, true);
      return ERRNO.SUCCESS;
    },
    fd_fdstat_set_flags() { return ERRNO.SUCCESS; },
    fd_prestat_get(fd, prestatPtr) {
      if (fd !== ROOT_FD) return ERRNO.BADF;
      view().setUint8(prestatPtr, 0); // a folder
      view().setUint32(prestatPtr + 4, 1, true); // named "/"
      return ERRNO.SUCCESS;
    },
    fd_prestat_dir_name(fd, pathPtr, len) {
      if (fd !== ROOT_FD) return ERRNO.BADF;
      bytes().set(encoder.encode('/').subarray(0, len), pathPtr);
      return ERRNO.SUCCESS;
    },
    path_open(dirFd, dirFlags, pathPtr, pathLen, openFlags, rightsBase, rightsInherit, fdFlags, fdPtr) {
      if (dirFd !== ROOT_FD) return ERRNO.BADF;
      const name = decoder.decode(bytes().slice(pathPtr, pathPtr + pathLen)).replace(/^\/+/, '');
      const create = (openFlags & 1) !== 0, truncate = (openFlags & 8) !== 0;
      let file;
      if (create || truncate) file = { name, data: new Uint8Array(0), size: 0, pos: 0, write: true };
      else if (name in files) file = { name, data: files[name], size: files[name].length, pos: 0, write: false };
      else return ERRNO.NOENT;
      const fd = nextFd++;
      fds.set(fd, file);
      view().setUint32(fdPtr, fd, true);
      return ERRNO.SUCCESS;
    },
    proc_exit(code) { throw new Exit(code); },
  };
  return {
    imports,
    setMemory(m) { memory = m; },
    stderr() { return stderrText.join('') + decoder.decode(); },
  };
}

async function run(args, files) {
  modulePromise = modulePromise || WebAssembly.compileStreaming(fetch('run.wasm'));
  const module = await modulePromise;
  const written = {}, inputs = {};
  for (const [name, buffer] of Object.entries(files)) inputs[name] = new Uint8Array(buffer);
  const wasi = wasiFor(['run', ...args], inputs, (message) => postMessage(message));
  const missing = () => ERRNO.NOSYS; // a call run.wasm would need and this shim lacks
  const table = {};
  for (const imp of WebAssembly.Module.imports(module))
    if (imp.module === 'wasi_snapshot_preview1') table[imp.name] = wasi.imports[imp.name] || missing;
  const instance = await WebAssembly.instantiate(module, { wasi_snapshot_preview1: table });
  wasi.setMemory(instance.exports.memory);
  let code = 0;
  try {
    instance.exports._start();
  } catch (e) {
    if (e instanceof Exit) code = e.code;
    else throw e;
  }
  for (const [name, data] of Object.entries(inputs)) if (!(name in files)) written[name] = data;
  postMessage({ type: 'stderr', text: wasi.stderr() });
  postMessage({ type: 'files', files: written });
  postMessage({ type: 'exit', code });
}

let kept = {}; // the last files sent: a page's later runs on the same files send none (a model is copied once)
onmessage = (event) => {
  const { args, files } = event.data;
  if (files) kept = files;
  run(args, kept).catch((e) => {
    postMessage({ type: 'stderr', text: `the WebAssembly run failed: ${e && e.message ? e.message : e}\n` });
    postMessage({ type: 'exit', code: 2 });
  });
};
