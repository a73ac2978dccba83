// This node's X25519 private key on disk, as `wg genkey > FILE` leaves it: one line of base64,
// mode 0600. Created on the first start with encryption on and read on every later one (a
// restart or a handover's successor keeps the key, so peers keep their sessions' identity).
//
// Rotation: delete the file and restart the daemon. A new key is generated and its public key
// published with this node's record (annotation, channel, etcd); peers take the new key in
// place and re-handshake with it.
import { closeSync, constants, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { randomBytes } from 'node:crypto'
import { formatKey, generatePrivateKey, parseKey, publicKeyOf } from './keys.js'

export interface NodeKey {
  privateKey: Buffer
  publicKey: Buffer
  created: boolean // generated now, not read
}

/** What is wrong with the key file and what to do about it: the daemon exits 2 with it. */
export class KeyFileError extends Error {}

/** The key in file, generated and written there first if there is none. Throws KeyFileError. */
export function loadOrCreateKey (file: string): NodeKey {
  const read = readKey(file)
  if (read) return { privateKey: read, publicKey: publicKeyOf(read), created: false }
  const privateKey = generatePrivateKey()
  let written: boolean
  try {
    written = writeKey(file, privateKey)
  } catch (err) {
    throw new KeyFileError(`${file}: cannot write a new private key: ${(err as Error).message}; make the directory writable (a host mount, so the key outlives the pod), or set wireguard.privateKeyFile`)
  }
  if (!written) {
    // Another process (a successor starting beside us) wrote one first: that one is the node's.
    const theirs = readKey(file)
    if (!theirs) throw new KeyFileError(`${file}: vanished while it was being created; start again`)
    return { privateKey: theirs, publicKey: publicKeyOf(theirs), created: false }
  }
  return { privateKey, publicKey: publicKeyOf(privateKey), created: true }
}

/** The private key in file; undefined when there is no file. */
export function readKey (file: string): Buffer | undefined {
  let fd: number
  try {
    // No symlinks: the mode checked below must be the key's own file's.
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw new KeyFileError(`${file}: is a symbolic link; the private key must be a regular file (mode 0600)`)
    throw new KeyFileError(`${file}: cannot read the private key: ${(err as Error).message}`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new KeyFileError(`${file}: is not a regular file`)
    // As wg(8) warns of a world-accessible key: a key others could read may be someone else's
    // by now, so it is refused, not used.
    if ((st.mode & 0o077) !== 0) {
      throw new KeyFileError(`${file}: the private key is readable or writable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); ` +
        'delete it to have a new key generated (peers re-handshake), or chmod 600 it if nobody else can have read it')
    }
    const key = parseKey(readFileSync(fd, 'utf8'))
    if (!key) {
      throw new KeyFileError(`${file}: does not hold a WireGuard private key (32 bytes in base64, as \`wg genkey\` writes); ` +
        'delete it to have a new key generated (peers re-handshake)')
    }
    return key
  } finally {
    closeSync(fd)
  }
}

/**
 * Writes the key to file unless one is there already (false then). The temporary file is
 * created 0600 (never readable by others, not for an instant) and synced, then linked into
 * place: link(2), unlike rename, fails rather than replace a key another process wrote.
 */
export function writeKey (file: string, privateKey: Buffer): boolean {
  const dir = dirname(file)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  // Random, not the pid: a predecessor in another container may have the same pid (often 1).
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
  try {
    try {
      writeSync(fd, `${formatKey(privateKey)}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    try {
      linkSync(tmp, file)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false
      throw err
    }
  } finally {
    unlinkSync(tmp)
  }
  // The new name durable before the public key goes out: a crash must not bring back no key.
  const dfd = openSync(dir, constants.O_RDONLY)
  try {
    fsyncSync(dfd)
  } finally {
    closeSync(dfd)
  }
  return true
}
