/** Prints reference() (reference.ts) as JSON: what tests/conftest.py runs when pytest is run by hand. */
import { reference } from './reference.ts';

process.stdout.write(JSON.stringify(reference()) + '\n');
