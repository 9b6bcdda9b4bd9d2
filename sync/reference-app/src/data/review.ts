import type { Database } from '@nozbe/watermelondb'
import type { RejectedRecord } from '@fieldcrm/watermelondb'

import { Conflict, Q } from '../generated/models'
import type { Session } from './session'

/** A record the server refused, as the rejected list shows it. */
export interface RejectedItem extends RejectedRecord {
  /** What the record is, in a few words (its name, title or content). */
  label: string
}

/**
 * rejectedItems lists the records the server refused that the device still
 * holds unpushed: editing one pushes it again at the next sync. (The client
 * forgets one dropped from the phone on its own.)
 */
export async function rejectedItems(session: Session): Promise<RejectedItem[]> {
  const items: RejectedItem[] = []
  for (const r of await session.rejectedRecords()) {
    items.push({ ...r, label: await labelOf(session.database, r.table, r.id) })
  }
  return items
}

/** labelOf names a record in a few words. */
async function labelOf(db: Database, table: string, id: string): Promise<string> {
  let raw: Record<string, unknown>
  try {
    raw = (await db.get(table).find(id))._raw as unknown as Record<string, unknown>
  } catch {
    // Not among the records: deleted on the device, a refused delete kept
    // to push again.
    return `${table} ${id} (deleted)`
  }
  for (const column of ['name', 'title', 'content']) {
    if (typeof raw[column] === 'string' && raw[column] !== '') return raw[column] as string
  }
  return `${table} ${id}`
}

/**
 * discardRejected drops a refused record from the phone for good (it was
 * never accepted, so the server has nothing to delete); the next sync
 * forgets its refusal.
 */
export async function discardRejected(db: Database, item: RejectedRecord): Promise<void> {
  const record = await db.get(item.table).find(item.id)
  await db.write(() => record.destroyPermanently())
}

/** openConflicts lists the conflicts synced to the device not yet resolved, newest first. */
export function openConflicts(db: Database): Promise<Conflict[]> {
  return db.get<Conflict>('conflicts').query(Q.where('resolution', ''), Q.sortBy('server_at', Q.desc)).fetch()
}

/**
 * resolveConflict keeps the value the policy kept or reverts to the other
 * one, then syncs: the resolution (and a reverted value) comes back by pull.
 */
export async function resolveConflict(session: Session, conflictId: string, action: 'keep' | 'revert'): Promise<void> {
  await session.client.resolveConflict(conflictId, action)
  await session.sync()
}
