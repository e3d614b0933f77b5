import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CONFIG_DOC, renderConfigDocs } from '../../scripts/config-docs.js';

test('docs/configuration.md is what the specs generate (run `node dist/scripts/config-docs.js --write`)', () => {
  assert.equal(readFileSync(CONFIG_DOC, 'utf8'), renderConfigDocs());
});
