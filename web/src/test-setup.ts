import { afterEach } from 'vitest';
import { cleanup } from '@testing-library/react';

// Node 20's WebCrypto, for jsdom builds that lack crypto.subtle.
import { webcrypto } from 'node:crypto';
if (!globalThis.crypto?.subtle) {
  Object.defineProperty(globalThis, 'crypto', { value: webcrypto, configurable: true });
}

afterEach(() => cleanup());
import '@testing-library/jest-dom/vitest';
