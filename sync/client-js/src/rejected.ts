import type { Database } from '@nozbe/watermelondb'
import type { SyncDatabaseChangeSet } from '@nozbe/watermelondb/sync'

/** A record the server refused, with its reason. */
export interface RejectedRecord {
  table: string
  id: string
  reason: string
}

interface Entry extends RejectedRecord {
  /** The record as it was pushed (its raw columns, _changed included), or "deleted". */
  snapshot: string
}

const storageKey = 'fieldcrm_rejected_records'

/**
 * RejectedRecords remembers, in the database's local storage, each refused
 * record as it was pushed. A record unchanged since is left out of the next
 * pushes (and reported to WatermelonDB as rejected, so it stays marked as
 * changed); once the app edits or deletes it, it differs from its snapshot
 * and is pushed again. A database reset forgets them all.
 */
export class RejectedRecords {
  constructor(private readonly db: Database) {}

  /**
   * list returns the refused records the device still holds unpushed. One
   * the app dropped since (or a pull brought back as synced) is forgotten
   * here, without waiting for the next push.
   */
  async list(): Promise<RejectedRecord[]> {
    const entries = await this.load()
    const still: Entry[] = []
    for (const e of entries) if (await this.stillUnpushed(e)) still.push(e)
    if (still.length !== entries.length) await this.save(still)
    return still.map(({ table, id, reason }) => ({ table, id, reason }))
  }

  /** stillUnpushed says whether the device still has the refused change to push. */
  private async stillUnpushed(e: Entry): Promise<boolean> {
    if (e.snapshot === 'deleted') return (await this.db.adapter.getDeletedRecords(e.table)).includes(e.id)
    let status: unknown
    try {
      status = (await this.db.get(e.table).find(e.id))._raw._status
    } catch {
      return false // not on the device: dropped for good
    }
    return status !== 'synced'
  }

  /**
   * split sorts the local changes into what to push and the ids held back
   * (refused before, unchanged since). Entries of records that changed are
   * forgotten: they are pushed again.
   */
  async split(changes: SyncDatabaseChangeSet): Promise<{ send: SyncDatabaseChangeSet; held: Record<string, string[]> }> {
    const entries = await this.load()
    if (entries.length === 0) return { send: changes, held: {} }
    const byKey = new Map(entries.map((e) => [e.table + '/' + e.id, e]))
    const send: SyncDatabaseChangeSet = {}
    const held: Record<string, string[]> = {}
    const keep = new Set<string>()
    for (const [table, tc] of Object.entries(changes)) {
      const isHeld = (id: string, snapshot: string): boolean => {
        const e = byKey.get(table + '/' + id)
        if (!e || e.snapshot !== snapshot) return false
        keep.add(table + '/' + id)
        ;(held[table] ??= []).push(id)
        return true
      }
      send[table] = {
        created: tc.created.filter((r) => !isHeld(String(r.id), snapshotOf(r))),
        updated: tc.updated.filter((r) => !isHeld(String(r.id), snapshotOf(r))),
        deleted: tc.deleted.filter((id) => !isHeld(id, 'deleted')),
      }
    }
    // A refused record that is no longer among the local changes was fixed
    // by a pull or destroyed: forget it too.
    const still = entries.filter((e) => keep.has(e.table + '/' + e.id))
    if (still.length !== entries.length) await this.save(still)
    return { send, held }
  }

  /** remember keeps the refused records of a push as they were sent. */
  async remember(sent: SyncDatabaseChangeSet, refused: RejectedRecord[]): Promise<void> {
    const entries = await this.load()
    const byKey = new Map(entries.map((e) => [e.table + '/' + e.id, e]))
    for (const r of refused) {
      const tc = sent[r.table]
      const row = tc && [...tc.created, ...tc.updated].find((x) => x.id === r.id)
      const snapshot = row ? snapshotOf(row) : 'deleted'
      byKey.set(r.table + '/' + r.id, { ...r, snapshot })
    }
    await this.save([...byKey.values()])
  }

  async clear(): Promise<void> {
    await this.db.adapter.removeLocal(storageKey)
  }

  private async load(): Promise<Entry[]> {
    const raw = await this.db.adapter.getLocal(storageKey)
    return raw ? (JSON.parse(raw) as Entry[]) : []
  }

  private async save(entries: Entry[]): Promise<void> {
    if (entries.length === 0) await this.db.adapter.removeLocal(storageKey)
    else await this.db.adapter.setLocal(storageKey, JSON.stringify(entries))
  }
}

/** snapshotOf is a record's raw columns as a string, keys in order. */
function snapshotOf(row: object): string {
  const r = row as Record<string, unknown>
  return JSON.stringify(Object.keys(r).sort().map((k) => [k, r[k]]))
}
