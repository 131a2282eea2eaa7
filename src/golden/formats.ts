/**
 * The golden file formats as zod schemas: what every file of a kind must hold before a reader builds cases from it.
 * The schemas check the frame (provenance, the list of records, the groups); each record is then read on its own,
 * so that one record a reader cannot use is an error row for that record while the others are still checked.
 *
 * @module
 */
import { z } from 'zod';

/** Provenance: the repository, commit, file and function that produced the data (golden/upstream/README.md). */
export const Provenance = z
  .object({
    repo: z.string().min(1),
    commit: z.string().min(7),
    file: z.string().min(1),
    function: z.string().min(1),
    notes: z.unknown().optional(),
    args: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

/** The embedding file cites several code bases (`sources`) instead of one repository. */
const SourcesProvenance = z.object({ sources: z.unknown(), notes: z.unknown().optional() }).loose();

const Env = z.record(z.string(), z.unknown()).optional();
/** One record: an object, read field by field by its reader. */
const Record_ = z.record(z.string(), z.unknown());

/** `id_q_functions.json`, `id_p_mean_variance.json`, `id_training_losses.json`, `id_calc_bpd_loop.json`. */
export const CasesFile = z.object({ meta: Provenance, cases: z.array(Record_).min(1), env: Env });
/** `timestep_embedding.json`. */
export const EmbeddingFile = z.object({ meta: SourcesProvenance, records: z.array(Record_).min(1), env: Env });
/** `id_buffers_<name>_T<T>.json` and `ho_beta_schedules_and_buffers.json`. */
export const BuffersFile = z.object({ meta: Provenance.extend({ args: z.record(z.string(), z.unknown()) }), outputs: Record_, env: Env }).loose();
/** `id_losses_elementwise.json`: groups of records per function. */
export const GroupsFile = z.object({ meta: Provenance, env: Env }).catchall(Record_);
/** `sampling_tiny_model.json`: `x_T`, the runs, `space_timesteps` and the respaced records. */
export const SamplingFile = z.object({ meta: Provenance, x_T: z.unknown(), runs: z.array(Record_).optional(), env: Env }).catchall(z.unknown());

/** The files recorded from diffusers name several files of one commit (`files`) and keep `env` inside `meta`. */
const DiffusersProvenance = z.object({ repo: z.string().min(1), commit: z.string().min(7), files: z.unknown(), function: z.string().min(1) }).loose();

/** `diffusers_set_timesteps.json`, `diffusers_buffers.json`. */
export const DiffusersCasesFile = z.object({ meta: DiffusersProvenance, cases: z.array(Record_).min(1) });
/** `diffusers_variance.json`: DDPM `_get_variance` records and DDIM's (checked by a property). */
export const DiffusersVarianceFile = z.object({ meta: DiffusersProvenance, ddpm: z.array(Record_).min(1), ddim: z.array(Record_).optional() });
/** `diffusers_loops.json`: the model (a description), the shared `x_T` and the loops. */
export const DiffusersLoopsFile = z.object({ meta: DiffusersProvenance, model: z.string().optional(), x_T: z.unknown(), cases: z.array(Record_).min(1) });

/** The top-level keys a format defines; others in a file of that format are not understood. */
export function knownKeys(schema: z.ZodObject): readonly string[] | undefined {
  const def = schema.def as { catchall?: unknown };
  // A loose or catch-all schema leaves the remaining keys to its reader.
  if (def.catchall !== undefined) return undefined;
  return Object.keys(schema.shape);
}
