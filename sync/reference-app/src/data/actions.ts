import type { Database } from '@nozbe/watermelondb'

import { Interaction, Task } from '../generated/models'

/** Where the phone was when the rep checked in (from the location API). */
export interface CheckIn {
  lat: number
  lng: number
  /** Metres. */
  accuracy: number
  address?: string
}

export interface Visit {
  customerId: string
  content: string
  outcome?: string
  checkIn: CheckIn
  /** Defaults to now. */
  occurredAt?: Date
  /**
   * A follow-up decided during the visit. The server makes it a task linked
   * to the visit (its interaction_id, which only the server writes) when the
   * visit is pushed; the task reaches the phone at the next pull.
   */
  nextStep?: NextStep
}

export interface NextStep {
  title: string
  dueAt: Date
  notes?: string
}

/**
 * logVisit records a visit with its check-in on the device; the next sync
 * pushes it. Bad values (a latitude out of range) are refused by the
 * server and show in the rejected list, so a rep offline is never blocked.
 */
export async function logVisit(db: Database, visit: Visit): Promise<Interaction> {
  return db.write(() =>
    db.get<Interaction>('interactions').create((i) => {
      i.customerId = visit.customerId
      i.channel = 'visit'
      i.occurredAt = visit.occurredAt ?? new Date()
      i.content = visit.content
      i.outcome = visit.outcome ?? ''
      i.checkIn = { lat: visit.checkIn.lat, lng: visit.checkIn.lng, accuracy: visit.checkIn.accuracy, address: visit.checkIn.address ?? '' }
      const next = visit.nextStep
      if (next) i.nextStep = { title: next.title, due_at: next.dueAt.toISOString(), notes: next.notes ?? '', task_id: '' }
    }),
  )
}

export interface FollowUp {
  customerId: string
  title: string
  notes?: string
  dueAt: Date
  /** The server sends the reminder push this many minutes before dueAt. */
  remindMinutesBefore: number
}

/**
 * planFollowUp plans a task for the rep with a reminder; the next sync
 * pushes it. (A follow-up of a visit goes as the visit's nextStep instead,
 * so that the server links the two.)
 */
export async function planFollowUp(db: Database, followUp: FollowUp): Promise<Task> {
  return db.write(() =>
    db.get<Task>('tasks').create((t) => {
      t.customerId = followUp.customerId
      t.title = followUp.title
      t.notes = followUp.notes ?? ''
      t.dueAt = followUp.dueAt
      t.status = 'open'
      t.remindMinutesBefore = followUp.remindMinutesBefore
    }),
  )
}
