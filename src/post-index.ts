// Entry of the post step's bundle (dist/post/index.js): the behaviour lives in post.ts, which runs nothing on import.
import { run } from './post.js';

await run();
