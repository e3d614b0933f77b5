/**
 * Headless Debian Chromium for page tests. The flags keep it off the network:
 * this machine has none, and Chromium's background services would otherwise
 * keep trying.
 */
import { chromium, type Browser } from 'playwright-core';
import { chromiumTool } from './system-tools.js';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumTool().path ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
