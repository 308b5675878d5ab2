// Every unit test runs TF.js on the same backend the Node hosts use.
import { initTf } from './apps/cli/src/tf-node.ts';

await initTf('wasm');
