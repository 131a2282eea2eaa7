/**
 * The UNet files of a golden folder, replayed with our tfjs reference: the model output and every recorded
 * activation of `<stem>_io.json` / `<stem>_activations.safetensors` for the state dict `<stem>.safetensors`, and
 * the sampling runs of `sampling_T<T>_<stem>.json` step by step through the implementation's sampling operations.
 * The operation vocabulary (and so the protocol) has no network operation: only the built-in reference runs these.
 *
 * @module
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DiffusionOps, ModelVarType } from '../conformance/ops.ts';
import { readJson, tensorAt, valueAt } from '../formats/jsonTensor.ts';
import { readSafetensors } from '../formats/safetensors.ts';
import { override } from '../numeric/tolerance.ts';
import { compareCheck } from './compare.ts';
import { skippedRows } from './index.ts';
import type { Row } from './types.ts';

// ---------------------------------------------------------------------------------------------------------

/** Fields of `<stem>_io.json` that other properties check, and which. */
const IO_FIELDS_ELSEWHERE: Record<string, string> = {
  state_dict_index: "the port's parameter names and shapes: checked against our parameter list by [unet.params.namesMatchPort]",
  lsun_256_config_param_count: 'the LSUN 256×256 configuration and its parameter count: checked by [unet.params.lsunIndex]',
};
/** Fields of a UNet sampling run that the replay reads. */
const RUN_FIELDS_READ = ['impl', 'model_var_type', 'eta', 'noise', 'trajectory', 'pred_xstart', 'logvar_buffer'];
/** Fields of a UNet sampling run that are not outputs to compare, and why. */
const RUN_FIELDS_ELSEWHERE: Record<string, string> = {
  'torch.manual_seed': 'provenance: the seed of the recorded noise (the noise itself is replayed)',
  final: "the trajectory's last entry (the trajectory is compared step by step)",
  max_abs_diff_vs_pesser_final: 'the recording code\'s own comparison with the pesser run: checked by [unet.sampling.goldenRunsAgree]',
};

const UNET_TOL = override({ rtol: 1e-4, atol: 1e-4 }, 'golden README: a float32 port of the UNet is within rtol 1e−4, atol 1e−4 of PyTorch (convolution summation order differs between backends)');
/** Hook names of the PyTorch port that are not module names, and what our forward pass calls them. */
const HOOK_RENAME: Record<string, string> = { 'get_timestep_embedding(t, ch)': 'timestep_embedding', output: 'conv_out' };

/**
 * Replay the UNet files of a folder with our reference: for every `<stem>_io.json` beside a `<stem>.safetensors`
 * state dict (configuration read from its metadata), the model output, every recorded activation
 * (`<stem>_activations.safetensors`) and every sampling run of `sampling_T<T>_<stem>.json`, step by step from the
 * reference code's own previous state, through the reference's sampling operations.
 */
export async function replayUnetFiles(
  dir: string,
  impl: DiffusionOps,
  add: (r: Row) => void,
  only: ((f: string) => boolean) | undefined,
  onStage?: (s: string) => void,
): Promise<string[]> {
  const tf = await import('@tensorflow/tfjs');
  const { readStateDict } = await import('../../reference/unet/weights.ts');
  const { unetForward } = await import('../../reference/unet/model.ts');
  const { disposeParams } = await import('../../reference/unet/params.ts');
  const names = readdirSync(dir);
  const handled: string[] = [];
  const nhwc = (t: { shape: number[]; data: ArrayLike<number> }) => tf.tidy(() => tf.tensor(Float32Array.from(t.data), t.shape).transpose([0, 2, 3, 1]));
  const nchw = async (t: import('@tensorflow/tfjs').Tensor): Promise<{ shape: number[]; data: Float64Array }> => {
    const p = t.rank === 4 ? t.transpose([0, 3, 1, 2]) : t.clone();
    const out = { shape: [...p.shape], data: Float64Array.from(await p.data()) };
    p.dispose();
    return out;
  };
  for (const io of names.filter((n) => /_io\.json$/.test(n))) {
    const stem = io.slice(0, -'_io.json'.length);
    if (!names.includes(`${stem}.safetensors`)) continue;
    const wanted = (f: string): boolean => only?.(f) ?? true;
    const actsName = `${stem}_activations.safetensors`;
    const samplingFiles = names.filter((n) => n.startsWith('sampling_T') && n.endsWith(`_${stem}.json`) && /^sampling_T\d+_/.test(n));
    if (![io, actsName, ...samplingFiles].some(wanted)) continue;
    const { config, params } = readStateDict(join(dir, `${stem}.safetensors`));
    try {
      // The model output for the recorded input, with integer and float timesteps.
      onStage?.(io);
      const ioPath = join(dir, io);
      const runIo = wanted(io);
      const root = readJson(ioPath);
      const xIn = tensorAt(root, 'inputs.x', io);
      const tIn = tensorAt(root, 'inputs.t', io);
      const x = nhwc(xIn);
      const kase = `model(x, t) with the weights of ${stem}.safetensors, t = [${Array.from(tIn.data).join(',')}]`;
      for (const key of runIo ? Object.keys(valueAt(root, 'outputs', io) as object) : []) {
        const tt = tf.tensor1d(Array.from(tIn.data), /float/.test(key) ? 'float32' : 'int32');
        const y = unetForward(config, params, x as import('@tensorflow/tfjs').Tensor4D, tt);
        add({ file: io, case: kase, op: undefined, ...compareCheck(await nchw(y), { quantity: key, expected: tensorAt(root, `outputs[${JSON.stringify(key)}]`, io), tol: UNET_TOL }) });
        tf.dispose([y, tt]);
      }
      if (runIo) {
        handled.push(`${stem}.safetensors`, io);
        for (const k of Object.keys(root as object)) {
          if (['meta', 'inputs', 'outputs', 'env'].includes(k)) continue;
          const why = IO_FIELDS_ELSEWHERE[k];
          for (const r of skippedRows([{ file: io, case: kase, quantity: k, reason: why ?? 'no reader for this field', kind: why ? 'not applicable' : 'not understood' }])) add(r);
        }
      }
      // Every activation the port's forward hooks recorded for that input.
      if (names.includes(actsName) && wanted(actsName)) {
        onStage?.(actsName);
        const acts = readSafetensors(join(dir, actsName)).tensors;
        const got = new Map<string, import('@tensorflow/tfjs').Tensor>();
        const tt = tf.tensor1d(Array.from(tIn.data), 'int32');
        const y = unetForward(config, params, x as import('@tensorflow/tfjs').Tensor4D, tt, { capture: (n, v) => got.set(n, v) });
        got.set('input.x', x.clone());
        for (const [name, ref] of acts) {
          const ours = got.get(HOOK_RENAME[name] ?? name);
          const expected = { shape: [...ref.shape], data: Float64Array.from(ref.data as ArrayLike<number>) };
          const row = ours
            ? compareCheck(await nchw(ours), { quantity: name, expected, tol: UNET_TOL })
            : { ...compareCheck(undefined, { quantity: name, expected, tol: UNET_TOL }), detail: `the forward pass recorded no activation named ${HOOK_RENAME[name] ?? name}` };
          add({ file: actsName, case: `forward hooks for the input of ${io}`, op: undefined, ...row });
        }
        tf.dispose([y, tt, ...got.values()]);
        handled.push(actsName);
      }
      x.dispose();
      // Sampling runs with this model, one step at a time from the reference code's own state.
      for (const sf of samplingFiles.filter(wanted)) {
        onStage?.(sf);
        await replayUnetSampling(join(dir, sf), sf, config, params, impl, add);
        handled.push(sf);
      }
    } finally {
      disposeParams(params);
    }
  }
  return handled;

  async function replayUnetSampling(
    path: string,
    file: string,
    config: import('../../reference/unet/config.ts').UNetConfig,
    params: import('../../reference/unet/params.ts').UNetParams,
    ops: DiffusionOps,
    emit: (r: Row) => void,
  ): Promise<void> {
    const root = readJson(path);
    const args = valueAt(root, 'meta.args', file) as { beta_schedule: string; beta_start: number; beta_end: number; num_diffusion_timesteps: number };
    const T = args.num_diffusion_timesteps;
    const { betas } = await ops.schedule!({ family: 'ho', name: args.beta_schedule, T, beta_start: args.beta_start, beta_end: args.beta_end });
    const xT = tensorAt(root, 'x_T', file);
    const [B, ...img] = xT.shape;
    const per = xT.data.length;
    const runs = valueAt(root, 'runs', file) as Array<{ impl: string; model_var_type?: string; eta?: number }>;
    for (let r = 0; r < runs.length; r++) {
      const run = runs[r];
      const noiseRun = run.impl.includes('noise replayed from the pesser run') ? r - 1 : r;
      const traj = tensorAt(root, `runs.${r}.trajectory`, file);
      const pred = tensorAt(root, `runs.${r}.pred_xstart`, file);
      const noise = tensorAt(root, `runs.${noiseRun}.noise`, file);
      // Step i starts from x_T (i = 0) or trajectory[i − 1], at t = T − 1 − i: all T steps as one batch of T·B.
      const inputs = new Float64Array(T * per);
      inputs.set(xT.data, 0);
      inputs.set(traj.data.subarray(0, (T - 1) * per), per);
      const X = { shape: [T * B, ...img], data: inputs };
      const t = { shape: [T * B], data: Float64Array.from({ length: T * B }, (_, k) => T - 1 - Math.floor(k / B)) };
      const xs = nhwc(X);
      const ts = tf.tensor1d(Array.from(t.data), 'int32');
      const y = unetForward(config, params, xs as import('@tensorflow/tfjs').Tensor4D, ts);
      const output = await nchw(y);
      tf.dispose([xs, ts, y]);
      // pesser's spelling (fixedsmall, fixedlarge) of the vocabulary's ModelVarType
      const varType: ModelVarType = run.model_var_type === 'fixedsmall' ? 'FIXED_SMALL' : 'FIXED_LARGE';
      const a = { betas, model_mean_type: 'EPSILON' as const, model_var_type: varType, clip_denoised: true };
      const N = { shape: [T * B, ...img], data: noise.data };
      const kase = `runs[${r}] ${run.impl}${run.eta !== undefined ? `, η = ${run.eta}` : `, ${run.model_var_type}`} (model: the UNet)`;
      const locate = (i: number) => `step ${Math.floor(i / per)} (t = ${T - 1 - Math.floor(i / per)}), example ${Math.floor((i % per) / (per / B))}`;
      try {
        const res = run.eta !== undefined ? await ops.ddim_step!({ ...a, eta: run.eta }, { kind: 'output', output }, X, t, N) : await ops.p_sample_step!(a, { kind: 'output', output }, X, t, N);
        const op = run.eta !== undefined ? 'ddim_step' : 'p_sample_step';
        emit({ file, case: kase, op, ...compareCheck(res.sample, { quantity: 'sample', expected: { shape: [T * B, ...img], data: traj.data }, tol: UNET_TOL, locate }) });
        emit({ file, case: kase, op, ...compareCheck(res.pred_xstart, { quantity: 'pred_xstart', expected: { shape: [T * B, ...img], data: pred.data }, tol: UNET_TOL, locate }) });
        if ('logvar_buffer' in run) await compareLogvarBuffer(run, varType, kase, r);
      } catch (e) {
        emit({ file, case: kase, quantity: 'sample, pred_xstart', verdict: 'error', maxAbs: NaN, maxRel: NaN, compared: 0, masked: 0, failures: 1, tolerance: '', reason: '', detail: `${(e as Error).name}: ${(e as Error).message}` });
      }
      for (const k of Object.keys(run)) {
        if (RUN_FIELDS_READ.includes(k)) continue;
        const why = RUN_FIELDS_ELSEWHERE[k];
        for (const row of skippedRows([{ file, case: kase, quantity: k, reason: why ?? 'no reader for this field', kind: why ? 'not applicable' : 'not understood' }])) emit(row);
      }
    }

    /**
     * pesser's `logvar_buffer` against the implementation's buffers: fixedlarge is log(β̃_1, β_2, …, β_T) (improved's
     * FIXED_LARGE); fixedsmall is log max(β̃_t, 1e−20), improved's clipped log β̃_t except at t = 0 (masked: pesser
     * keeps log 1e−20 there, improved log β̃_1, and a step at t = 0 adds no noise, so sampling never reads it).
     */
    async function compareLogvarBuffer(run: Record<string, unknown>, varType: ModelVarType, kase: string, r: number): Promise<void> {
      const expected = tensorAt(root, `runs.${r}.logvar_buffer`, file);
      const b = await ops.buffers!({ betas });
      const pv = b.posterior_variance.data;
      const got = varType === 'FIXED_LARGE' ? Float64Array.from(b.betas.data, (x, i) => Math.log(i === 0 ? pv[1] : x)) : b.posterior_log_variance_clipped.data;
      const keep = Uint8Array.from(got, (_, i) => (varType === 'FIXED_SMALL' && i === 0 ? 0 : 1));
      const mask = { keep, reason: "t = 0 of fixedsmall: pesser's log 1e−20 against improved's clipped log β̃_1; a step at t = 0 adds no noise" };
      emit({ file, case: kase, op: 'buffers', ...compareCheck({ shape: [got.length], data: got }, { quantity: `logvar_buffer (${String(run.model_var_type)})`, expected, tol: UNET_TOL, ...(varType === 'FIXED_SMALL' ? { mask } : {}) }) });
    }
  }
}

