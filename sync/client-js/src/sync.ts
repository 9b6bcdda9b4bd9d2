import type { Database } from '@nozbe/watermelondb'
import { synchronize } from '@nozbe/watermelondb/sync'
import type { SyncDatabaseChangeSet, SyncPullArgs, SyncPullResult, SyncPushArgs, SyncPushResult } from '@nozbe/watermelondb/sync'

import { Credentials, Fetch, globalFetch } from './credentials'
import { FieldcrmProblemError } from './errors'
import { Api } from './http'
import { RejectedRecords, RejectedRecord } from './rejected'

/** Progress of a sync(), reported after each page pulled. */
export interface SyncProgress {
  /** Records received so far in this sync() (created, updated and deleted). */
  done: number
  /**
   * Records this sync() is expected to bring in all: exact once the last
   * page arrived; before, estimated from how far the pages went through the
   * sync numbers the server reports (X-Sync-Until).
   */
  expected: number
  /** Pages pulled so far. */
  pages: number
  /** This sync() started from nothing (a first sync, or after a reset). */
  firstSync: boolean
}

/** One conflict the server recorded (GET /v1/conflicts). */
export interface Conflict {
  id: string
  table: string
  record_id: string
  column: string
  /** The values, JSON-encoded. */
  server_value: string
  server_by: string
  server_at: string
  device_value: string
  device_by: string
  device_id: string
  policy: string
  /** Which value the policy kept: "device" or "server". */
  kept: string
  resolution: string
  resolved_by: string
  resolved_at: string | null
}

/** What one sync() did. */
export interface SyncReport {
  pages: number
  /** Records received (created, updated and deleted). */
  pulled: number
  /** Rounds of pulls: more than one when a push met conflicts or records came back. */
  rounds: number
  /** Records the server refused in this sync(), with its reasons. */
  rejected: RejectedRecord[]
  /** The server asked for a fresh start (410): unpushed changes were pushed, the database reset. */
  reset: boolean
  /** The first sync came whole, in one response, through WatermelonDB's Turbo Login. */
  turbo: boolean
}

/** Options of createSync. */
export interface SyncOptions {
  /** The server, e.g. https://crm.example.com (no trailing slash). */
  baseUrl: string
  database: Database
  credentials: Credentials
  /** The device id the user signed in with; push tokens are registered under it. */
  deviceId: string
  /** The server refused a record: it stays on the device, not pushed again until edited. */
  onRejected?: (table: string, id: string, reason: string) => void
  /** After each page pulled. */
  onProgress?: (progress: SyncProgress) => void
  /** Passed on to synchronize(), for apps whose schema has migrations. */
  migrationsEnabledAtVersion?: number
  /**
   * Use WatermelonDB's Turbo Login for a first sync when the adapter can
   * (SQLite with JSI): the whole first sync in one response (turbo=true),
   * applied by the native side unparsed. Default true; ignored elsewhere.
   */
  turbo?: boolean
  fetch?: Fetch
}

/** The client: sync, push tokens, conflicts, sign-out. */
export interface FieldcrmSync {
  /** Pulls every page, pushes local changes, and pulls again until they converge. */
  sync(): Promise<SyncReport>
  /** Registers this device's push token (FCM) under the sign-in's device id. */
  registerPushToken(token: string, platform: 'android' | 'ios' | 'web'): Promise<void>
  /** Ends the session; the server stops pushes to this device with it. */
  signOut(): Promise<void>
  /** The conflicts recorded on one record (newest first), resolved ones included. */
  conflictsOf(table: string, recordId: string): Promise<Conflict[]>
  /** keep: the value the policy kept stays; revert: the other one is written back. */
  resolveConflict(id: string, action: 'keep' | 'revert'): Promise<Conflict>
  /** Records the server refused that the device still holds unpushed. */
  rejectedRecords(): Promise<RejectedRecord[]>
  /** The API, for other authenticated calls (refresh and sign-out handled). */
  readonly api: Api
}

const lastPulledAtKey = '__watermelon_last_pulled_at'

/** The most pull rounds one sync() runs when pushes keep meeting conflicts. */
const maxRounds = 4

interface PushAnswer {
  accepted?: Record<string, string[]>
  conflicted?: Record<string, string[]>
  rejected?: Record<string, { id: string; reason: string }[]>
  experimentalRejectedIds?: Record<string, string[]>
}

/** What one synchronize() call (one page) learned. */
interface PageOutcome {
  records: number
  until: number
  timestamp: number
  hasMore: boolean
  conflicts: number
  turbo: boolean
}

/** createSync returns the client for one signed-in user and database. */
export function createSync(opts: SyncOptions): FieldcrmSync {
  const api = new Api(opts.baseUrl, opts.credentials, opts.fetch ?? globalFetch())
  const rejected = new RejectedRecords(opts.database)
  const db = opts.database
  let running: Promise<SyncReport> | null = null
  let queued: Promise<SyncReport> | null = null

  const turboCapable = (): boolean => {
    if (opts.turbo === false) return false
    // WatermelonDB takes syncJson only from SQLiteAdapter running on JSI.
    const adapter = (db.adapter as unknown as { underlyingAdapter?: { _dispatcherType?: string } }).underlyingAdapter
    return adapter?._dispatcherType === 'jsi'
  }

  const cursor = async (): Promise<number | null> => {
    const raw = await db.adapter.getLocal(lastPulledAtKey)
    return raw ? Number(raw) : null
  }

  /** push sends the local changes, leaving out the records refused as they are. */
  const push = async (report: SyncReport, { changes, lastPulledAt }: SyncPushArgs, outcome: PageOutcome | null): Promise<SyncPushResult> => {
    const { send, held } = await rejected.split(changes)
    if (isEmpty(send)) return { experimentalRejectedIds: held }
    const res = await api.json<PushAnswer>('POST', `/v1/sync/push?last_pulled_at=${lastPulledAt}`, { changes: send })
    const refused: RejectedRecord[] = []
    for (const [table, rows] of Object.entries(res.rejected ?? {})) {
      for (const { id, reason } of rows) refused.push({ table, id, reason })
    }
    if (refused.length) {
      await rejected.remember(send, refused)
      for (const r of refused) {
        report.rejected.push(r)
        opts.onRejected?.(r.table, r.id, r.reason)
      }
    }
    if (outcome) for (const ids of Object.values(res.conflicted ?? {})) outcome.conflicts += ids.length
    const ids: Record<string, string[]> = { ...held }
    for (const [table, list] of Object.entries(res.experimentalRejectedIds ?? {})) ids[table] = [...(ids[table] ?? []), ...list]
    return { experimentalRejectedIds: ids }
  }

  /** page runs one synchronize(): one page pulled, then the local changes pushed. */
  const page = async (report: SyncReport): Promise<PageOutcome> => {
    const outcome: PageOutcome = { records: 0, until: 0, timestamp: 0, hasMore: false, conflicts: 0, turbo: false }
    const turbo = turboCapable() && (await cursor()) === null
    await synchronize({
      database: db,
      migrationsEnabledAtVersion: opts.migrationsEnabledAtVersion,
      unsafeTurbo: turbo,
      pullChanges: async ({ lastPulledAt, schemaVersion, migration }: SyncPullArgs): Promise<SyncPullResult> => {
        const q = `last_pulled_at=${lastPulledAt ?? 'null'}&schema_version=${schemaVersion}` +
          (turbo ? '&turbo=true' : `&migration=${encodeURIComponent(JSON.stringify(migration ?? null))}`)
        const res = await api.request('GET', '/v1/sync/pull?' + q)
        outcome.records = Number(res.headers.get('X-Sync-Records') ?? 0)
        outcome.until = Number(res.headers.get('X-Sync-Until') ?? 0)
        outcome.hasMore = res.headers.get('X-Sync-Has-More') === 'true'
        if (turbo) {
          // The body goes to the native side as it came, unparsed.
          outcome.turbo = true
          return { syncJson: await res.text() }
        }
        const body = (await res.json()) as { changes: SyncDatabaseChangeSet; timestamp: number; has_more?: boolean; experimentalHasMore?: boolean }
        outcome.timestamp = body.timestamp
        outcome.hasMore = Boolean(body.has_more ?? body.experimentalHasMore ?? outcome.hasMore)
        return { changes: body.changes, timestamp: body.timestamp }
      },
      onDidPullChanges: async (rest: object) => {
        const ts = (rest as { timestamp?: unknown }).timestamp
        if (typeof ts === 'number') outcome.timestamp = ts
      },
      pushChanges: (args: SyncPushArgs) => push(report, args, outcome),
    })
    // A whole first sync has no X-Sync-Records header (it is streamed as it
    // is read): the records it brought are the ones the database now holds.
    if (outcome.turbo) outcome.records = await localRecords()
    return outcome
  }

  const localRecords = async (): Promise<number> => {
    let n = 0
    for (const table of Object.keys(db.schema.tables)) n += await db.get(table).query().fetchCount()
    return n
  }

  /** round pulls every page, reporting progress. */
  const round = async (report: SyncReport): Promise<number> => {
    const start = (await cursor()) ?? 0
    const firstSync = start === 0
    let conflicts = 0
    let done = 0
    for (;;) {
      const p = await page(report)
      report.pages++
      report.turbo = report.turbo || p.turbo
      done += p.records
      conflicts += p.conflicts
      if (opts.onProgress) {
        const span = p.until - start
        const fraction = !p.hasMore ? 1 : span > 0 ? Math.min(1, Math.max(0, (p.timestamp - start) / span)) : 0
        const expected = !p.hasMore ? done : fraction > 0 ? Math.max(done, Math.round(done / fraction)) : done
        opts.onProgress({ done: report.pulled + done, expected: report.pulled + expected, pages: report.pages, firstSync })
      }
      if (!p.hasMore) break
    }
    report.pulled += done
    return conflicts
  }

  /**
   * startOver is the answer to 410 resync-required: push what is unpushed
   * with the cursor the device has (the server applies it blind, recording
   * conflicts), reset the database, and pull from nothing.
   */
  const startOver = async (report: SyncReport): Promise<void> => {
    await synchronize({
      database: db,
      pullChanges: async ({ lastPulledAt }: SyncPullArgs): Promise<SyncPullResult> => ({ changes: {}, timestamp: lastPulledAt ?? 1 }),
      pushChanges: (args: SyncPushArgs) => push(report, args, null),
    })
    await db.write(() => db.unsafeResetDatabase())
    await rejected.clear()
    report.reset = true
  }

  const runSync = async (): Promise<SyncReport> => {
    const report: SyncReport = { pages: 0, pulled: 0, rounds: 0, rejected: [], reset: false, turbo: false }
    for (;;) {
      report.rounds++
      let conflicts: number
      try {
        conflicts = await round(report)
      } catch (err) {
        if (!(err instanceof FieldcrmProblemError && err.status === 410) || report.reset) throw err
        await startOver(report)
        continue
      }
      // A push that met conflicts changed records on the server: pull them
      // now, so the device shows what the server kept.
      if (conflicts === 0 || report.rounds >= maxRounds) return report
    }
  }

  // One synchronize() at a time: a call during a sync runs once more after
  // it (so edits made meanwhile are pushed), and calls during that wait share it.
  const sync = (): Promise<SyncReport> => {
    if (!running) {
      running = runSync().finally(() => {
        running = null
      })
      return running
    }
    if (!queued) {
      queued = running.catch(() => undefined).then(() => {
        queued = null
        return sync()
      })
    }
    return queued
  }

  return {
    api,
    sync,
    async registerPushToken(token, platform) {
      await api.request('POST', '/v1/devices', { device_id: opts.deviceId, fcm_token: token, platform })
    },
    async signOut() {
      // The server unregisters the session's device (its push token) with
      // the session. A session already ended is signed out already.
      try {
        await api.request('POST', '/v1/auth/logout')
      } catch (err) {
        if (!(err instanceof FieldcrmProblemError && err.isSessionRevoked)) throw err
      }
    },
    async conflictsOf(table, recordId) {
      const out: Conflict[] = []
      let after = ''
      for (;;) {
        const q = `table=${encodeURIComponent(table)}&record_id=${encodeURIComponent(recordId)}${after ? '&after=' + encodeURIComponent(after) : ''}`
        const page = await api.json<{ data: Conflict[]; next_after?: string | null }>('GET', '/v1/conflicts?' + q)
        out.push(...page.data)
        if (!page.next_after) return out
        after = page.next_after
      }
    },
    resolveConflict(id, action) {
      return api.json<Conflict>('POST', `/v1/conflicts/${encodeURIComponent(id)}/resolve`, { action })
    },
    rejectedRecords: () => rejected.list(),
  }
}

function isEmpty(changes: SyncDatabaseChangeSet): boolean {
  return Object.values(changes).every((t) => t.created.length + t.updated.length + t.deleted.length === 0)
}
