import { useState } from 'react'
import { Text, TextInput, View } from 'react-native'
import type { Database } from '@nozbe/watermelondb'

import { planFollowUp } from '../data'
import { Button, Link } from './Button'
import { styles } from './styles'

export interface PlanFollowUpScreenProps {
  database: Database
  customerId: string
  onDone: () => void
  onCancel: () => void
}

const day = 24 * 60 * 60 * 1000

/** PlanFollowUpScreen plans a task in some days, with a reminder push before it is due. */
export function PlanFollowUpScreen({ database, customerId, onDone, onCancel }: PlanFollowUpScreenProps) {
  const [title, setTitle] = useState('')
  const [notes, setNotes] = useState('')
  const [inDays, setInDays] = useState('1')
  const [remindMinutes, setRemindMinutes] = useState('30')
  const [error, setError] = useState<string | null>(null)

  const save = async () => {
    const days = Number(inDays)
    const remind = Number(remindMinutes)
    if (!Number.isFinite(days) || days < 0 || !Number.isInteger(remind) || remind < 0 || remind > 10080) {
      setError('Due in a number of days; reminder from 0 to 10080 minutes (a week) before.')
      return
    }
    await planFollowUp(database, { customerId, title: title.trim(), notes, dueAt: new Date(Date.now() + days * day), remindMinutesBefore: remind })
    onDone()
  }

  return (
    <View style={styles.screen}>
      <Link title="‹ Cancel" onPress={onCancel} />
      <Text style={styles.title}>Plan a follow-up</Text>
      <Text style={styles.label}>Task</Text>
      <TextInput style={styles.input} value={title} onChangeText={setTitle} />
      <Text style={styles.label}>Notes</Text>
      <TextInput style={styles.input} multiline value={notes} onChangeText={setNotes} />
      <Text style={styles.label}>Due in (days)</Text>
      <TextInput style={styles.input} keyboardType="numeric" value={inDays} onChangeText={setInDays} />
      <Text style={styles.label}>Remind me (minutes before)</Text>
      <TextInput style={styles.input} keyboardType="number-pad" value={remindMinutes} onChangeText={setRemindMinutes} />
      {error && <Text style={styles.error}>{error}</Text>}
      <Button title="Save follow-up" onPress={save} disabled={title.trim() === ''} />
    </View>
  )
}
