// OCI images without a registry or an image builder: a layer is a tar file
// made with GNU tar; an image is a config, a manifest and an index entry
// written by hand into one OCI image layout (a blob store shared by every
// image built here). `ctr images import` reads the layout as a tar stream.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';

export interface Blob {
  digest: string;
  size: number;
}

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
}

export interface BuiltImage {
  /** Full reference, e.g. trace-operator.local/runner:0123abcd. */
  ref: string;
  manifest: Blob;
}

const MEDIA = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
} as const;

/** An OCI image layout directory used as a content-addressed cache. */
export class OciLayout {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  blobPath(digest: string): string {
    return path.join(this.dir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
  }

  has(digest: string): boolean {
    return existsSync(this.blobPath(digest));
  }

  async init(): Promise<void> {
    await mkdir(path.join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await writeFile(path.join(this.dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}\n');
  }

  /** Stores bytes as a blob. */
  async putBytes(bytes: Buffer): Promise<Blob> {
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (!this.has(digest)) await writeFile(this.blobPath(digest), bytes);
    return { digest, size: bytes.length };
  }

  /** Moves a finished file (a layer tar) into the store under its digest. */
  async putFile(file: string): Promise<Blob> {
    const blob = await fileDigest(file);
    if (this.has(blob.digest)) await rm(file, { force: true });
    else await rename(file, this.blobPath(blob.digest));
    return blob;
  }

  /**
   * Writes the config and manifest of an image made of uncompressed `layers`
   * (so each layer's digest is also its diff id), and its index file
   * `index-<name>-<tag>.json`. The tag is derived from the manifest digest
   * unless given, so equal content gives an equal reference.
   */
  async writeImage(name: string, layers: readonly Blob[], config: ImageConfig, tag?: string): Promise<BuiltImage> {
    const configBlob = await this.putBytes(
      Buffer.from(
        JSON.stringify({
          architecture: 'amd64',
          os: 'linux',
          created: '1970-01-01T00:00:00Z',
          config,
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
        }),
      ),
    );
    const manifest = await this.putBytes(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MEDIA.manifest,
          config: { mediaType: MEDIA.config, ...configBlob },
          layers: layers.map((l) => ({ mediaType: MEDIA.layer, ...l })),
        }),
      ),
    );
    const imageTag = tag ?? manifest.digest.slice('sha256:'.length, 'sha256:'.length + 16);
    const ref = `${name}:${imageTag}`;
    const index = {
      schemaVersion: 2,
      mediaType: MEDIA.index,
      manifests: [
        {
          mediaType: MEDIA.manifest,
          ...manifest,
          platform: { architecture: 'amd64', os: 'linux' },
          // containerd names the imported image after io.containerd.image.name.
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': imageTag },
        },
      ],
    };
    await writeFile(this.indexPath(ref), `${JSON.stringify(index)}\n`);
    return { ref, manifest };
  }

  indexPath(ref: string): string {
    return path.join(this.dir, `index-${ref.replace(/[^A-Za-z0-9_.-]+/g, '_')}.json`);
  }

  /** The blobs one image needs: its manifest, config and layers. */
  async blobsOf(ref: string): Promise<string[]> {
    const index = JSON.parse(await readFile(this.indexPath(ref), 'utf8')) as { manifests: { digest: string }[] };
    const digests: string[] = [];
    for (const m of index.manifests) {
      const manifest = JSON.parse(await readFile(this.blobPath(m.digest), 'utf8')) as {
        config: { digest: string };
        layers: { digest: string }[];
      };
      digests.push(m.digest, manifest.config.digest, ...manifest.layers.map((l) => l.digest));
    }
    return digests;
  }

  /** The arguments of `tar` that write one image of this layout, as an OCI archive, to stdout. */
  async archiveArgs(ref: string): Promise<string[]> {
    const members = (await this.blobsOf(ref)).map((d) => path.relative(this.dir, this.blobPath(d)));
    const index = path.basename(this.indexPath(ref));
    return [
      '-C',
      this.dir,
      '-cf',
      '-',
      `--transform=s,^${index.replace(/\./g, '\\.')}$,index.json,`,
      'oci-layout',
      index,
      ...members,
    ];
  }

  /**
   * Drops older versions of the images in `current` (other tags of the same
   * names), then every blob that no remaining image refers to.
   */
  async prune(current: readonly string[]): Promise<void> {
    const names = new Set(current.map((ref) => ref.slice(0, ref.lastIndexOf(':'))));
    const keep = new Set(current);
    const remaining: string[] = [];
    for (const file of await readdir(this.dir)) {
      if (!file.startsWith('index-')) continue;
      const index = JSON.parse(await readFile(path.join(this.dir, file), 'utf8')) as {
        manifests: { annotations?: Record<string, string> }[];
      };
      const ref = index.manifests[0]?.annotations?.['io.containerd.image.name'] ?? '';
      if (!keep.has(ref) && names.has(ref.slice(0, ref.lastIndexOf(':'))))
        await rm(path.join(this.dir, file), { force: true });
      else if (ref !== '') remaining.push(ref);
    }
    const wanted = new Set<string>();
    for (const ref of remaining)
      for (const d of await this.blobsOf(ref).catch(() => [])) wanted.add(d.slice('sha256:'.length));
    const blobs = path.join(this.dir, 'blobs', 'sha256');
    for (const file of await readdir(blobs)) if (!wanted.has(file)) await rm(path.join(blobs, file), { force: true });
  }
}

export async function fileDigest(file: string): Promise<Blob> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Packs a directory as a layer tar. With `reproducible`, owners become 0:0
 * and times the epoch, so equal files give an equal digest; otherwise
 * owners (numeric) and times are kept, as a root file system needs.
 */
export async function tarLayer(
  rootDir: string,
  outFile: string,
  options: { reproducible: boolean; exclude?: string[] },
): Promise<void> {
  const args = [
    '--sort=name',
    '--numeric-owner',
    '--format=posix',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
  ];
  if (options.reproducible) args.push('--owner=0', '--group=0', '--mtime=@0');
  for (const pattern of options.exclude ?? []) args.push(`--exclude=${pattern}`);
  await execa('tar', [...args, '-C', rootDir, '-cf', outFile, '.'], { stdin: 'ignore' });
}
