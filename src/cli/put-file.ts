// Uploads a file by path (Node only): the file becomes a lazily read Blob (fs.openAsBlob), so the
// SDK sends a single PUT or parts sliced from it without ever holding the file in memory.

import { openAsBlob, statSync } from 'node:fs';
import type { ObjectRef } from '../protocol/api';
import type { Client } from '../sdk/client';
import type { PutOptions } from '../sdk/objects';

export async function putFile(client: Client, path: string, options: PutOptions = {}): Promise<ObjectRef> {
  if (!statSync(path).isFile()) throw new Error(`${path}: not a regular file`);
  const blob = await openAsBlob(path, options.contentType ? { type: options.contentType } : {});
  return client.put(blob, options);
}
