import { FilesError } from './errors.ts';

export function requiredPath(url: URL): string {
  const path = url.searchParams.get('path');
  if (!path) throw new FilesError(400, 'path: required');
  return path;
}
