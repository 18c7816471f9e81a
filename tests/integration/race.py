#!/usr/bin/env python3
"""race.py: helpers of race.sh that have to be fast enough to race the daemon.

  race.py read MNT STOPFILE OUT SUMFILE   reads every node kind until STOPFILE exists;
                                          writes each wrong answer to OUT
  race.py torn MNT DIR WORK ROUNDS        a text opened after the kernel learnt its
                                          size, its domain changed before the first
                                          READ: the read gives the text of the open
                                          or the new one, whole, never one cut to the
                                          other's size
  race.py versions MNT DIR WORK          files opened before a change read the text
                                          of their open, whole, from the page cache
                                          or not; a new open reads the new text, and
                                          stat's size is the bytes read, at once after
                                          a change through the mount
  race.py flip DIR WORK STOPFILE MAX     rewrites snapshot files of domain web as
                                          libvirt does (temp file, rename), moving
                                          <active> and adding/removing a snapshot,
                                          until STOPFILE exists (MAX rounds at most);
                                          ends with the original bytes
"""
import errno
import hashlib
import os
import re
import sys
import time
import xml.etree.ElementTree as ET

NAME = r'(s[1-9]|c[0-9]+|q[0-9]+|r[0-9]+|installed|configured|transient)'
STATES = {'disk-snapshot', 'shutoff', 'running', 'paused', 'crashed', 'pmsuspended',
          'blocked', 'shutdown', 'nostate', 'disk-only'}
# a domain's own state file: virsh domstate's words
DOMSTATES = {'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'}


def xml_root(data, tag):
    root = ET.fromstring(data)
    if root.tag != tag:
        raise ValueError('root <%s>, not <%s>' % (root.tag, tag))
    return root


def check_file(path, data, sums):
    leaf = os.path.basename(path)
    text = data.decode()
    if leaf in ('snapshot.xml', 'snapshot.secure.xml'):
        root = xml_root(data, 'domainsnapshot')
        want = os.path.basename(os.path.dirname(path))
        if root.findtext('name') != want:
            raise ValueError('names %r' % root.findtext('name'))
    elif leaf in ('domain.xml', 'domain.secure.xml'):
        xml_root(data, 'domain')
    elif leaf.endswith('.xml') and leaf != 'backup.xml':
        xml_root(data, 'disk')
    elif leaf == 'state' and '/snapshots/' not in path:
        if text not in {w + '\n' for w in DOMSTATES}:
            raise ValueError('domain state %r' % text)
    elif leaf == 'state':
        if text.strip() not in STATES:
            raise ValueError('state %r' % text)
    elif leaf == 'creationTime':
        if not re.fullmatch(r'[0-9]+\n', text):
            raise ValueError('creationTime %r' % text)
    elif leaf in ('uuid', 'genid'):
        if not re.fullmatch(r'([0-9a-f-]{36}\n)?', text) or (leaf == 'uuid' and not text):
            raise ValueError('%s %r' % (leaf, text))
    elif leaf == 'info':
        if not text.startswith('image: '):
            raise ValueError('info %r' % text[:60])
    elif leaf == 'snapshots.tsv':
        for line in text.splitlines():
            if not re.match(NAME + '\t', line):
                raise ValueError('tsv row %r' % line)
    elif leaf == 'data':
        top, label = path.split('/disks/')
        want = sums.get(top.rsplit('/', 1)[-1] + '/' + label[:-len('/data')])
        got = hashlib.md5(data).hexdigest()
        if want and got != want:
            raise ValueError('data md5 %s, want %s' % (got, want))


LINKS = {
    'current': re.compile(r'snapshots/' + NAME),
    'parent': re.compile(r'\.\./' + NAME),
    'backing': re.compile(r'\.\./vd[a-z]\[[0-9]+\]'),
}


def check_link(path, target):
    leaf = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(path))
    if parent == 'children':
        ok = target == '../../' + leaf
    elif leaf in LINKS:
        ok = LINKS[leaf].fullmatch(target)
    else:
        # the temporary link `ln -sfn` makes beside current before renaming it onto it
        ok = LINKS['current'].fullmatch(target)
    if not ok:
        raise ValueError('link %r' % target)


def visit(path, depth, out, sums, direct=False):
    """One node: lstat (unless @direct), then list, read or readlink it by kind (a
    name's kind when @direct); recurse to @depth."""
    try:
        st = None if direct else os.lstat(path)
        if path.endswith(('/current', '/parent', '/backing')) or (st and os.path.islink(path)):
            check_link(path, os.readlink(path))
        elif (st and st.st_mode & 0o040000) or path.endswith('/children'):
            names = os.listdir(path)
            if depth > 0:
                for n in names:
                    if n in ('ctl',):
                        continue
                    visit(os.path.join(path, n), depth - 1, out, sums)
        elif not path.endswith('/ctl/create'):
            with open(path, 'rb') as f:
                data = f.read(1 << 20 if path.endswith('/data') else -1)
            check_file(path, data, sums)
    except OSError as e:
        if e.errno != errno.ENOENT:
            out.write('%s: %s\n' % (path, e))
            out.flush()
            if e.errno in (errno.ENOTCONN, errno.ECONNABORTED):
                sys.exit(1)
    except (ValueError, UnicodeDecodeError, ET.ParseError) as e:
        out.write('%s: %s\n' % (path, e))
        out.flush()


def read(mnt, stop, outpath, sumfile):
    sums = dict(line.split() for line in open(sumfile))
    # The nodes that race hardest (links and files of snapshots that come and go) often,
    # everything (ls -R depth) now and then.
    hot = ['db/current', 'web/current', 'db/snapshots/s8/parent', 'web/snapshots/configured/parent',
           'web/snapshots/transient/parent', 'web/snapshots/transient/state',
           'web/snapshots/transient/snapshot.xml', 'web/snapshots/installed/children',
           'web/snapshots/configured/snapshot.xml', 'db/snapshots/s8/domain.xml',
           'db/tree', 'db/snapshots.tsv', 'web/tree', 'db/ctl/result', 'db/job',
           'db/disks/vda/data', 'db/disks/vda/info', 'db/disks/vda.xml',
           'db/disks/vda/backing', 'web/disks/vda[1]/backing']
    n = 0
    with open(outpath, 'a') as out:
        while not os.path.exists(stop):
            for p in hot:
                visit(os.path.join(mnt, p), 1, out, sums, direct=True)
            if n % 100 == 0:
                visit(mnt, 6, out, sums)
            n += 1


def torn(mnt, d, work, rounds):
    path = os.path.join(mnt, 'web/snapshots.tsv')

    def orig(name):
        with open(os.path.join(d, name + '.xml'), 'rb') as f:
            return f.read()
    conf, inst = orig('configured'), orig('installed')
    # Current moves from configured to installed (a row early in the text changes its
    # length) and a snapshot appears; then all is put back.
    changes = [{'configured': conf.replace(b'<active>1</active>', b'<active>0</active>'),
                'installed': inst.replace(b'<active>0</active>', b'<active>1</active>'),
                'transient': inst.replace(b'<name>installed</name>', b'<name>transient</name>')},
               {'configured': conf, 'installed': inst, 'transient': None}]
    tmp = os.path.join(work, 'torn.tmp')

    def settled():
        for _ in range(50):
            time.sleep(0.1)
            with open(path, 'rb') as f:
                text = f.read()
            if (b'transient' in text) == (n % 2 == 0):
                return text
        raise RuntimeError('the change did not show')
    bad = 0
    with open(path, 'rb') as f:
        before = f.read()
    for n in range(rounds):
        os.stat(path)                        # the kernel knows the text's size
        fd = os.open(path, os.O_RDONLY)
        try:
            # Nothing of it cached (as after memory pressure): the first read asks.
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            for name, data in changes[n % 2].items():
                if data is None:
                    os.unlink(os.path.join(d, name + '.xml'))
                    continue
                with open(tmp, 'wb') as t:
                    t.write(data)
                os.rename(tmp, os.path.join(d, name + '.xml'))
            # Some reads come before the change is seen, some while it is being seen.
            time.sleep((n % 8) * 0.04)
            os.listdir(os.path.join(mnt, 'web/snapshots'))
            got = b''
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                got += chunk
        finally:
            os.close(fd)
        after = settled()
        if got not in (before, after):
            print('round %d: %d bytes, before %d, after %d: %r' %
                  (n, len(got), len(before), len(after), got[-60:]))
            bad += 1
        before = after
    print('%d of %d reads cut or padded' % (bad, rounds))
    return bad == 0


def read_fd(fd, first=b''):
    got = first
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return got
        got += chunk


def slurp(path):
    with open(path, 'rb') as f:
        return f.read()


def versions(mnt, d, work):
    ok = True

    def expect(cond, what):
        nonlocal ok
        if not cond:
            print('versions: ' + what)
            ok = False
    path = os.path.join(mnt, 'web/snapshots/configured/snapshot.xml')
    src = os.path.join(d, 'configured.xml')
    tmp = os.path.join(work, 'versions.tmp')
    orig = slurp(src)
    before = slurp(path)
    expect(slurp(path) == before, 'two reads of one version differ')
    ino = os.stat(path).st_ino
    # Opened before the change: one not read yet, one read in part, one read whole
    # and then dropped from the page cache.
    fds = [os.open(path, os.O_RDONLY) for _ in range(3)]
    part = os.read(fds[1], 100)
    whole = read_fd(fds[2])
    os.posix_fadvise(fds[2], 0, 0, os.POSIX_FADV_DONTNEED)
    with open(tmp, 'wb') as f:
        f.write(orig.replace(b'<state>', b'<description>a new version</description>\n  <state>', 1))
    os.rename(tmp, src)
    for _ in range(50):
        time.sleep(0.1)
        after = slurp(path)
        if after != before:
            break
    expect(b'a new version' in after, 'the change did not show')
    st = os.stat(path)
    expect(st.st_size == len(after), 'stat says %d bytes, a read gives %d' % (st.st_size, len(after)))
    expect(st.st_ino != ino, 'the new version has the old inode')
    expect(read_fd(fds[0]) == before, 'an open before the change, read after it: not its text')
    expect(read_fd(fds[1], part) == before, 'an open read across the change: not its text')
    expect(whole == before and os.pread(fds[2], 1 << 20, 0) == before,
           'an open read again after the change: not its text')
    for fd in fds:
        expect(os.fstat(fd).st_size == len(before), 'fstat of an open before the change')
        os.close(fd)
    with open(tmp, 'wb') as f:
        f.write(orig)
    os.rename(tmp, src)
    for _ in range(50):
        time.sleep(0.1)
        if slurp(path) == before:
            break
    expect(slurp(path) == before, 'the file put back did not show')
    # A change through the mount (ln -sfn: a temporary link renamed onto current) moves
    # current in web/snapshots.tsv: stat and a read agree at once, and give the new text.
    tsv = os.path.join(mnt, 'web/snapshots.tsv')
    cur = os.readlink(os.path.join(mnt, 'web/current'))
    other = 'snapshots/installed' if cur.endswith('configured') else 'snapshots/configured'
    for target in (other, cur):
        old = slurp(tsv)
        os.stat(tsv)
        fd = os.open(tsv, os.O_RDONLY)
        link = os.path.join(mnt, 'web/versions.tmp')
        os.symlink(target, link)
        os.rename(link, os.path.join(mnt, 'web/current'))
        size = os.stat(tsv).st_size
        new = slurp(tsv)
        expect(new != old, 'web/snapshots.tsv did not change with current (%s)' % target)
        expect(size == len(new), 'after ln -sfn %s: stat says %d bytes, a read gives %d' %
               (target, size, len(new)))
        expect(read_fd(fd) == old, 'an open of web/snapshots.tsv before ln -sfn: not its text')
        os.close(fd)
    return ok


def flip(d, work, stop, count):
    def orig(name):
        with open(os.path.join(d, name + '.xml'), 'rb') as f:
            return f.read()
    conf, inst = orig('configured'), orig('installed')
    conf_off = conf.replace(b'<active>1</active>', b'<active>0</active>')
    inst_on = inst.replace(b'<active>0</active>', b'<active>1</active>')
    trans = inst.replace(b'<name>installed</name>', b'<name>transient</name>')
    assert conf_off != conf and inst_on != inst and trans != inst

    def put(name, data):
        # Written next to the store, not in it: the loader reads every entry there.
        tmp = os.path.join(work, 'flip.tmp')
        with open(tmp, 'wb') as f:
            f.write(data)
        os.rename(tmp, os.path.join(d, name + '.xml'))
    for n in range(count):
        if os.path.exists(stop):
            break
        put('configured', conf_off)       # no current for a moment, as when libvirt moves it
        put('installed', inst_on)
        put('transient', trans)
        put('installed', inst)
        put('configured', conf)
        os.unlink(os.path.join(d, 'transient.xml'))
    print('%d outside rewrites' % (6 * n))


if __name__ == '__main__':
    if sys.argv[1] == 'read':
        read(*sys.argv[2:6])
    elif sys.argv[1] == 'torn':
        sys.exit(0 if torn(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])) else 1)
    elif sys.argv[1] == 'versions':
        sys.exit(0 if versions(sys.argv[2], sys.argv[3], sys.argv[4]) else 1)
    elif sys.argv[1] == 'flip':
        flip(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        sys.exit('usage: see race.py')
