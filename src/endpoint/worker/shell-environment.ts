// The environment a shell function's command runs in: the few variables a command needs to find
// programs and its home, and those the endpoint config names; never the rest of the worker's, which
// it inherits from the manager and the agent (FERRY_TOKEN, FERRY_HOME, a job's secrets).

/** What the worker takes from its own environment for commands. */
const INHERITED = ['PATH', 'HOME', 'LANG'] as const;

/** How a manager hands the config's `env` to a worker (JSON), removed by the worker once read. */
export const SHELL_ENV_VARIABLE = 'FERRY_SHELL_ENV';

/** PATH, HOME and LANG from `from` (where set), then `extra` (the config's `env`) over them. */
export function shellEnvironment(from: NodeJS.ProcessEnv, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Reads and removes the config's `env` from this process's environment, as the manager set it. */
export function takeShellEnvFromEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const text = env[SHELL_ENV_VARIABLE];
  delete env[SHELL_ENV_VARIABLE];
  if (text === undefined) return {};
  const parsed: unknown = JSON.parse(text);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.values(parsed).every((v) => typeof v === 'string')) {
    throw new Error(`${SHELL_ENV_VARIABLE} must be a JSON object of strings`);
  }
  return parsed as Record<string, string>;
}
