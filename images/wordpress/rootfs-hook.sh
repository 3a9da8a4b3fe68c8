#!/bin/sh
# mmdebstrap customize hook ($1 = the rootfs): lay WordPress out as the official image does, a complete
# self-contained tree in /usr/src/wordpress that the entrypoint copies into /var/www/html.
# Debian's package splits it (code in /usr/share/wordpress with symlinks into other packages, wp-content
# in /var/lib/wordpress, config in /etc/wordpress); the symlinks are resolved inside the chroot.
set -eu
chroot "$1" /bin/sh -eu <<'CHROOT'
rm -rf /usr/src/wordpress
mkdir -p /usr/src
cp -rL /usr/share/wordpress /usr/src/wordpress
# Debian's wp-config.php reads /etc/wordpress/config-HOST.php; the image generates one from WORDPRESS_* env.
rm -f /usr/src/wordpress/wp-config.php /usr/src/wordpress/.htaccess
cp /var/lib/wordpress/wp-content/index.php /usr/src/wordpress/wp-content/index.php
# Keep the package's files out of the image: /usr/src/wordpress is the only copy.
rm -rf /usr/share/wordpress /var/lib/wordpress /etc/wordpress
chown -R 33:33 /usr/src/wordpress
CHROOT
