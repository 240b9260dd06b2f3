// A new order's chime, synthesised with WebAudio: no sound file to download.
let context: AudioContext | null = null

export function beep(): void {
  beeps.count += 1
  try {
    context ??= new AudioContext()
    const now = context.currentTime
    for (const [offset, frequency] of [[0, 880], [0.18, 1320]] as const) {
      const oscillator = context.createOscillator()
      const gain = context.createGain()
      oscillator.type = 'sine'
      oscillator.frequency.value = frequency
      gain.gain.setValueAtTime(0.0001, now + offset)
      gain.gain.exponentialRampToValueAtTime(0.3, now + offset + 0.02)
      gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.16)
      oscillator.connect(gain).connect(context.destination)
      oscillator.start(now + offset)
      oscillator.stop(now + offset + 0.17)
    }
  } catch {
    // No audio device (a headless browser): the board still shows the order.
  }
}

/** How many chimes were asked for: the browser tests read `window.__dinegraphBeeps`. */
export const beeps = { count: 0 }
;(window as unknown as { __dinegraphBeeps: typeof beeps }).__dinegraphBeeps = beeps
