// The one error a test raises when a real service it needs is not installed. Tests fail on it,
// in CI and out: a suite that skipped would report green without having run.

/** `what` is missing; `packagesFile` (under .ci/) lists the Debian packages that provide it. */
export function missingServiceError(what: string, packagesFile: string): Error {
  return new Error(
    `${what} is not installed: apt-get install -y $(cat .ci/${packagesFile}), ` +
      'or run `bash .ci/run` as root on Debian/Ubuntu, which installs everything the tests need and runs them',
  );
}
