// `fedcare export` then `fedcare predict`, as a hospital's IT runs them, on a run a real coordinator
// committed: the exported model scores records exactly as the portal's worker code does.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toNdjson } from '@fedcare/shared/data';
import { HospitalClient, modelCardMarkdown, riskStatsOf, type ModelCard } from '@fedcare/shared/fl';
import { openSqliteStore } from '@fedcare/server';
import { initTf } from '../tf-node';
import { fedcareRun } from '../testing-processes';
import { smallFinishedRun } from '../testing-runs';

describe('fedcare export and predict', () => {
  it('exports the latest model with its model card; predict reproduces the portal’s probabilities for the same records', async () => {
    const { dir, db, runId, cohort, hospitals, rounds } = await smallFinishedRun({ prefix: 'fc-export-', seed: 21, patients: 40, rounds: 2, seqLen: 8 });

    const out = path.join(dir, 'model');
    const exported = await fedcareRun(['export', '--db', db, '--run', runId.slice(-8), '--out', out]);
    expect(exported.code, exported.out).toBe(0);
    const manifest = JSON.parse(readFileSync(path.join(out, 'model.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'fedcare-model/1', run_id: runId, round: 2, model: 'standard', classes: ['Low', 'Medium', 'High'], features: { seq_len: 8 } });
    const card = JSON.parse(readFileSync(path.join(out, 'model-card.json'), 'utf8')) as ModelCard;
    expect(card.model.weights_sha256).toBe(manifest.weights.sha256);
    expect(card.training.hospitals.map((h) => h.hospital_id)).toEqual(hospitals);
    expect(card.training.hospitals.every((h) => h.rounds_participated === 2 && (h.train_examples ?? 0) > 0)).toBe(true);
    expect(card.privacy.mechanism).toMatch(/^none/);
    expect(readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8')).toBe(modelCardMarkdown(card));
    // No record of any patient in the card: counts and rates only.
    const cardText = readFileSync(path.join(out, 'MODEL_CARD.md'), 'utf8') + readFileSync(path.join(out, 'model-card.json'), 'utf8');
    for (const r of cohort.flat()) expect(cardText.includes(r.patient_id), r.patient_id).toBe(false);

    // predict on H2's records…
    const data = path.join(dir, 'H2.ndjson');
    writeFileSync(data, toNdjson(cohort[1]!));
    const csvFile = path.join(dir, 'scores.csv');
    const predicted = await fedcareRun(['predict', '--model', out, '--data', data, '--out', csvFile]);
    expect(predicted.code, predicted.out).toBe(0);
    const lines = readFileSync(csvFile, 'utf8').trim().split('\r\n');
    expect(lines).toHaveLength(1 + cohort[1]!.length);
    const header = lines[0]!.split(',');
    const rows = new Map(lines.slice(1).map((l) => l.split(',')).map((c) => [c[0] as string, c]));

    // …against what H2's portal worker computes with the same stored model and statistics.
    await initTf('wasm');
    const store = openSqliteStore(db);
    const stored = (await store.getModel(runId, 'latest'))!;
    const stats = riskStatsOf(runId, (await store.getFeatureStats(runId))!, 'this check');
    await store.close();
    const client = new HospitalClient('H2', cohort[1]!);
    client.setStats(runId, stats, 8);
    await client.evaluate({ run_id: runId, round: 2, stage: 'evaluate', weights: stored.bytes, weights_sha256: stored.sha256 });
    // The run calibrated (every round picks a temperature): the export carries the last round's, the portal asks for the same.
    expect(manifest.temperature).toBe(rounds[1]!.metrics.temperature);
    const portal = await client.scorePatients(manifest.temperature);
    client.dispose();
    expect(portal.model_sha256).toBe(manifest.weights.sha256);
    const col = (name: string) => header.indexOf(name);
    for (const s of portal.scores) {
      const row = rows.get(s.patient_id)!;
      expect(row, s.patient_id).toBeDefined();
      expect(row[col('hospital_id')]).toBe('H2');
      expect(row[col('predicted')]).toBe(s.predicted);
      // The CSV prints 6 decimals: equal to that precision.
      ['p_low', 'p_medium', 'p_high'].forEach((name, k) => expect(Math.abs(Number(row[col(name)]) - (s.probabilities[k] as number))).toBeLessThanOrEqual(5e-7));
    }

    // A tampered weights file is refused by name before anything is scored.
    const bytes = readFileSync(path.join(out, 'weights.bin'));
    bytes[100] = (bytes[100] as number) ^ 1;
    writeFileSync(path.join(out, 'weights.bin'), bytes);
    const tampered = await fedcareRun(['predict', '--model', out, '--data', data, '--out', path.join(dir, 'x.csv')]);
    expect(tampered.code).toBe(1);
    expect(tampered.out).toMatch(/weights\.bin: its SHA-256 is not the one model\.json names/);
    // An unknown round is a clear error.
    const missing = await fedcareRun(['export', '--db', db, '--run', runId, '--version', '7', '--out', path.join(dir, 'm7')]);
    expect(missing.code).toBe(1);
    expect(missing.out).toMatch(/has no kept model for round 7/);
  }, 300_000);
});
