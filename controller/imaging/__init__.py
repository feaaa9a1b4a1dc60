"""The hospital's imaging archive: find a subject's studies, keep the images chosen for each
lesion and cycle with the case, and write the procedure back as a DICOM structured report."""
