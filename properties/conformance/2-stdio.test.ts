import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { connectStdio, ImplError, OpUnsupported, type StdioOps } from '../../src/conformance/impl/stdio.ts';
import { OpError, type Tensor } from '../../src/conformance/ops.ts';
import { rejection } from './support.ts';

const fixture = fileURLToPath(new URL('./fixtures/misbehaving-impl.mjs', import.meta.url));
const impl = (mode: string): string => `${JSON.stringify(process.execPath)} ${JSON.stringify(fixture)} ${mode}`;
const x: Tensor = { shape: [2], data: Float64Array.from([0.25, -1]) };

/** Run `f` on a connected implementation and always close it. */
async function withImpl<T>(mode: string, f: (ops: StdioOps) => Promise<T>, timeoutS = 10): Promise<T> {
  const ops = await connectStdio(impl(mode), { timeoutS, helloTimeoutS: 10 });
  try {
    return await f(ops);
  } finally {
    await ops.close();
  }
}


describe('8.2 The stdio client: any process that speaks the protocol is an implementation; misbehaviour is named', () => {
  it('exposes exactly the operations the handshake lists, and answers decode to tensors  [conformance.stdio.handshakeAndCall]', () =>
    withImpl('ok', async (ops) => {
      expect(ops.name).toBe('misbehaving (ok)');
      expect([...ops.supported]).toEqual(['normal_kl', 'approx_standard_normal_cdf']);
      expect([...ops.unknownOps]).toEqual(['frobnicate']);
      expect(ops.q_sample).toBeUndefined();
      const { cdf } = await ops.approx_standard_normal_cdf!(x);
      expect(cdf.shape).toEqual([2]);
      expect(Array.from(cdf.data)).toEqual([0.25, -1]);
    }));

  it('an error answer becomes OpError, and type "unsupported" becomes OpUnsupported  [conformance.stdio.errorAnswers]', async () => {
    const e1 = await withImpl('error', (ops) => rejection(ops.approx_standard_normal_cdf!(x)));
    expect(e1).toBeInstanceOf(OpError);
    expect(e1).not.toBeInstanceOf(OpUnsupported);
    expect(e1.message).toBe('approx_standard_normal_cdf: the implementation raised FloatingPointError: tanh overflowed');
    const e2 = await withImpl('unsupported', (ops) => rejection(ops.approx_standard_normal_cdf!(x)));
    expect(e2).toBeInstanceOf(OpUnsupported);
  });

  it('an answer that lacks an output or has a malformed tensor fails that call, naming the field  [conformance.stdio.malformedAnswer]', async () => {
    const e1 = await withImpl('missing', (ops) => rejection(ops.approx_standard_normal_cdf!(x)));
    expect(e1).toBeInstanceOf(ImplError);
    expect(e1.message).toMatch(/answer to approx_standard_normal_cdf \(request 1\): outputs\.cdf: missing .*got cfd/);
    const e2 = await withImpl('bad-tensor', (ops) => rejection(ops.approx_standard_normal_cdf!(x)));
    expect(e2.message).toMatch(/outputs\.cdf\.data: shape \[3\] says dimension 0 has length 3, but data has 2/);
  });

  it('a child that dies mid-request fails the call with its exit code and the end of its stderr  [conformance.stdio.childDeath]', async () => {
    const e = await withImpl('die', async (ops) => {
      const first = await rejection(ops.approx_standard_normal_cdf!(x));
      const later = await rejection(ops.normal_kl!(x, x, x, x));
      expect(later.message).toMatch(/^normal_kl: not sent, because the implementation exited with code 1/);
      return first;
    });
    expect(e).toBeInstanceOf(ImplError);
    expect(e.message).toMatch(/approx_standard_normal_cdf \(request 1\): the implementation exited with code 1/);
    expect(e.message).toMatch(/\| MemoryError/);
  });

  it('a line on stdout that is not a protocol message stops the session, quoting the line  [conformance.stdio.junkOnStdout]', async () => {
    const e = await withImpl('junk', (ops) => rejection(ops.approx_standard_normal_cdf!(x)));
    expect(e).toBeInstanceOf(ImplError);
    expect(e.message).toMatch(/line 2 of its stdout is not JSON: "computing the cdf\.\.\." \(stdout carries only protocol messages; write logs to stderr\)/);
  });

  it('an answer to a request nobody made stops the session  [conformance.stdio.unknownId]', async () => {
    const e = await withImpl('wrong-id', (ops) => rejection(ops.approx_standard_normal_cdf!(x)));
    expect(e.message).toMatch(/answers request 101, which is not waiting for an answer/);
  });

  it('a request with no answer within the timeout fails and stops the child  [conformance.stdio.timeout]', async () => {
    const t0 = Date.now();
    const e = await withImpl('silent', (ops) => rejection(ops.approx_standard_normal_cdf!(x)), 0.5);
    expect(e).toBeInstanceOf(ImplError);
    expect(e.message).toMatch(/no answer within 0\.5 s/);
    expect(Date.now() - t0).toBeLessThan(8000);
  });

  it('a failed handshake is an error that says what was expected or why the child ended  [conformance.stdio.badHandshake]', async () => {
    const e1 = await rejection(connectStdio(impl('bad-hello'), { helloTimeoutS: 10 }));
    expect(e1).toBeInstanceOf(ImplError);
    expect(e1.message).toMatch(/answered hello with an unexpected message: field hello\.protocol/);
    const e2 = await rejection(connectStdio(impl('exit-before-hello'), { helloTimeoutS: 10 }));
    expect(e2.message).toMatch(/did not complete the handshake: hello \(request 0\): the implementation exited with code 3/);
    expect(e2.message).toMatch(/no module named torch/);
    const e3 = await rejection(connectStdio('ddpm-spec-no-such-command-here', { helloTimeoutS: 10 }));
    expect(e3.message).toMatch(/exited with code 127[\s\S]*not found/);
  });
});
