// Entry of the main step's bundle (dist/index.js): the behaviour lives in main.ts, which runs nothing on import.
import { run } from './main.js';

await run();
