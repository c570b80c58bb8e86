// The way the e2e browser scripts report to their Go tests: one line per
// check ("ok   NAME" or "FAIL NAME: why"), the first failure ends the
// script (exit 1) after onFail (screenshots, closing the browser), and
// done() prints the "N passed, 0 failed" line the Go test waits for.
export function checks(onFail = async () => {}) {
  let passed = 0;
  return {
    async check(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`ok   ${name}`);
      } catch (err) {
        console.log(`FAIL ${name}: ${err?.stack ?? err}`);
        await onFail().catch(() => {});
        process.exit(1);
      }
    },
    done() {
      console.log(`${passed} passed, 0 failed`);
    },
  };
}
