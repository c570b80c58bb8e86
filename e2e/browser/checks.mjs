// The checks' reporting of the e2e browser scripts (demo.mjs, dpop.mjs,
// oidc-client-ts/flow.mjs): oidc-client/shared.mjs's check and done, with
// onFail run (screenshots, closing the browser) before a failure ends the
// script.
import { check, done } from '../oidc-client/shared.mjs';

export function checks(onFail = async () => {}) {
  return {
    check: (name, fn) =>
      check(name, async () => {
        try {
          await fn();
        } catch (err) {
          await onFail().catch(() => {});
          throw err;
        }
      }),
    done,
  };
}
