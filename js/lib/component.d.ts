// The component build has the wasm-bindgen build's API: the same classes,
// functions and types.
export * from '../pkg/node/h2fw.js';
