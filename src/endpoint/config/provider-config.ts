// The `provider:` section of an endpoint's config, one schema per provider. The providers take the
// parsed types as they are (src/endpoint/providers/*), so each option, its default and its rule
// are written once, here, and an error names the field as the owner wrote it.

import { z } from 'zod';
import { FerryError } from '../../protocol/errors';

/** Scaling fields every provider shares (read by the agent's block scaler, not by the providers). */
const scaling = {
  /** Blocks started with the endpoint. */
  init_blocks: z.number().int().min(0).default(1),
  min_blocks: z.number().int().min(0).default(0),
  max_blocks: z.number().int().min(1).default(1),
  nodes_per_block: z.number().int().min(1).default(1),
  max_workers_per_node: z.number().int().min(1).max(1024).default(2),
  /** Seconds a block may sit with no task before it is cancelled (down to min_blocks). */
  max_idletime_s: z.number().min(1).default(120),
};

/** Text, or lines of it. */
const lines = z.union([z.string(), z.array(z.string())]);

/** A partition, queue, account or QoS: one word, so it cannot smuggle a second directive in. */
const schedulerName = (scheduler: string) => z.string().regex(/^[\w.@+-]+$/, `not a valid ${scheduler} name`);

/** Slurm's `--time`: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS. */
export const SLURM_WALLTIME = /^(\d+(:\d{1,2}){0,2}|\d+-\d+(:\d{1,2}){0,2})$/;
/** PBS's `-l walltime`: seconds, MM:SS or HH:MM:SS; PBS has no day prefix. */
export const PBS_WALLTIME = /^\d+(:\d{1,2}){0,2}$/;

export const LocalProviderConfig = z.strictObject({ type: z.literal('local'), ...scaling });

export const SlurmProviderConfig = z.strictObject({
  type: z.literal('slurm'),
  ...scaling,
  init_blocks: z.number().int().min(0).default(0),
  partition: schedulerName('Slurm').optional(),
  account: schedulerName('Slurm').optional(),
  qos: schedulerName('Slurm').optional(),
  /** `--time`. Omitted: the partition's default. */
  walltime: z.string().regex(SLURM_WALLTIME, 'must be MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS').optional(),
  /**
   * Whole nodes per block (`--exclusive`). A block runs one manager per node that forks many
   * workers: without whole nodes (or cpus_per_node) Slurm grants one CPU per node.
   */
  exclusive: z.boolean().default(true),
  /** `--cpus-per-task` of the one task per node, for sites that share nodes (`exclusive: false`). */
  cpus_per_node: z.number().int().min(1).optional(),
  /** Extra directives, one per line, with or without the leading `#SBATCH`. */
  scheduler_options: lines.optional(),
  /** Shell lines run before the managers start (`module load …`, `source venv/bin/activate`). */
  worker_init: lines.optional(),
});

export const PbsProviderConfig = z.strictObject({
  type: z.literal('pbs'),
  ...scaling,
  init_blocks: z.number().int().min(0).default(0),
  queue: schedulerName('PBS').optional(),
  account: schedulerName('PBS').optional(),
  /** `-l walltime`. Omitted: the queue's default. */
  walltime: z.string().regex(PBS_WALLTIME, 'must be HH:MM:SS, MM:SS or seconds (PBS takes no D- prefix: write 48:00:00)').optional(),
  /**
   * How nodes are requested: 'select' (PBS Pro, OpenPBS) writes `-l select=<nodes>:<select>`,
   * 'nodes' (Torque) writes `-l nodes=<nodes>:ppn=<cpus_per_node>`.
   */
  resource_style: z.enum(['select', 'nodes']).default('select'),
  /** The chunk's resources after `select=<nodes>:`, e.g. `ncpus=64:mem=200gb`. */
  select: z.string().regex(/^[\w.:=+-]+$/, 'must be chunk resources like "ncpus=64:mem=200gb"').optional(),
  /** CPUs per node: `ncpus=` of the chunk (select style, when select is not given) or `ppn=`. */
  cpus_per_node: z.number().int().min(1).optional(),
  /**
   * Shell words that start one manager per node of a multi-node block (e.g. `mpiexec -n 4 -ppn 1`,
   * or Torque's `pbsdsh -u`); required when a block has more than one node.
   */
  launcher: z.string().optional(),
  /** Extra directives, one per line, with or without the leading `#PBS`. */
  scheduler_options: lines.optional(),
  /** Shell lines run before the managers start (`module load …`). */
  worker_init: lines.optional(),
});

export const ProviderConfigSchema = z.discriminatedUnion('type', [LocalProviderConfig, SlurmProviderConfig, PbsProviderConfig]);

export type LocalProviderConfig = z.infer<typeof LocalProviderConfig>;
export type SlurmProviderConfig = z.infer<typeof SlurmProviderConfig>;
export type PbsProviderConfig = z.infer<typeof PbsProviderConfig>;
export type ProviderConfig = z.infer<typeof ProviderConfigSchema>;

/**
 * A provider section from code (a test, a tool) rather than a file: the same schema, defaults and
 * rules; CONFIG_INVALID naming each field as `provider.<field>`.
 */
export function parseProviderSection<S extends z.ZodType>(schema: S, section: unknown): z.infer<S> {
  const parsed = schema.safeParse(section);
  if (parsed.success) return parsed.data;
  throw new FerryError('CONFIG_INVALID', parsed.error.issues.map((i) => `provider.${i.path.join('.') || '(section)'}: ${i.message}`).join('\n'));
}
